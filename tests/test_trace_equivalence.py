"""Tracing only observes: the same programs give the same results on the traced and stock loops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopviz.trace import new_event_loop

Program = Callable[[], Coroutine[Any, Any, Any]]


def on_stock(program: Program) -> Any:
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        return runner.run(program())


def on_traced(program: Program, **options: Any) -> Any:
    with asyncio.Runner(loop_factory=lambda: new_event_loop(**options)) as runner:
        return runner.run(program())


async def task_group_with_failure() -> list[str]:
    seen: list[str] = []

    async def ok(n: int) -> None:
        await asyncio.sleep(0.2 * n)
        seen.append(f"ok{n}")

    async def bad() -> None:
        await asyncio.sleep(0.3)  # between ok1 and ok2, with room for jitter at 20x
        raise KeyError("bad")

    try:
        async with asyncio.TaskGroup() as group:
            for n in range(1, 4):
                group.create_task(ok(n))
            group.create_task(bad())
    except* KeyError as errors:
        seen.append(f"caught {len(errors.exceptions)} KeyError")
    return seen


async def wait_for_and_timeouts() -> list[str]:
    out = []
    try:
        await asyncio.wait_for(asyncio.sleep(1), timeout=0.02)
    except TimeoutError:
        out.append("wait_for timed out")
    out.append(str(await asyncio.wait_for(asyncio.sleep(0.01, result="r"), timeout=1)))
    try:
        async with asyncio.timeout(0.02):
            await asyncio.sleep(1)
    except TimeoutError:
        out.append("timeout() expired")
    return out


async def cancellation() -> list[str]:
    out: list[str] = []

    async def victim() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            out.append("victim cleaned up")
            raise

    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "swallowed"
        return "not cancelled"

    t1 = asyncio.create_task(victim())
    t2 = asyncio.create_task(stubborn())
    shielded = asyncio.create_task(asyncio.sleep(0.02, result="shielded"))
    await asyncio.sleep(0.01)
    t1.cancel("stop")
    t2.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await t1
    out.append(f"t1 cancelled={t1.cancelled()}")
    out.append(await t2)
    outer = asyncio.ensure_future(asyncio.shield(shielded))
    await asyncio.sleep(0)
    outer.cancel()
    out.append(await shielded)
    return out


async def queues() -> list[int]:
    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=3)
    got: list[int] = []

    async def producer() -> None:
        for i in range(20):
            await queue.put(i)
        await queue.put(None)

    async def consumer() -> None:
        while (item := await queue.get()) is not None:
            got.append(item * item)
            queue.task_done()
        queue.task_done()

    await asyncio.gather(producer(), consumer())
    await queue.join()
    return got


async def streams() -> list[bytes]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    answers = []
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for word in (b"one\n", b"two\n", b"three\n"):
            writer.write(word)
            answers.append(await reader.readline())
        writer.close()
        await writer.wait_closed()
    return answers


async def threads_and_gather() -> list[Any]:
    def blocking(n: int) -> int:
        return sum(range(n))

    results = await asyncio.gather(
        asyncio.to_thread(blocking, 1000),
        asyncio.sleep(0.01, result="slept"),
        asyncio.to_thread(blocking, 10),
        return_exceptions=True,
    )
    sem = asyncio.Semaphore(2)
    order: list[int] = []

    async def limited(i: int) -> None:
        async with sem:
            order.append(i)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(limited(i) for i in range(6)))
    return [*results, order]


async def async_generators() -> list[int]:
    async def counter(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    return [i async for i in counter(5)]


PROGRAMS = [
    task_group_with_failure,
    wait_for_and_timeouts,
    cancellation,
    queues,
    streams,
    threads_and_gather,
    async_generators,
]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_same_results_as_the_stock_loop(program: Program) -> None:
    expected = on_stock(program)
    assert on_traced(program) == expected
    assert on_traced(program, speed=20) == expected


@pytest.mark.parametrize(
    "program",
    [task_group_with_failure, wait_for_and_timeouts, cancellation, queues],
    ids=lambda p: p.__name__,
)
def test_same_results_in_virtual_time(program: Program) -> None:
    assert on_traced(program, virtual_time=True) == on_stock(program)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=12))
def test_timers_fire_in_the_same_order(delays: list[int]) -> None:
    """Whatever the sleeps, tasks finish in the order the stock loop finishes them. Delays
    are 5 ms apart at least: each task starts its sleep a little after the one before it, and
    on a busy machine 1 ms apart could swap on the stock loop too."""

    async def program() -> list[int]:
        finished: list[int] = []

        async def sleeper(i: int, units: int) -> None:
            await asyncio.sleep(units * 5 / 1000)
            finished.append(i)

        await asyncio.gather(*(sleeper(i, ms) for i, ms in enumerate(delays)))
        return finished

    expected = sorted(range(len(delays)), key=lambda i: (delays[i], i))
    assert on_traced(program, virtual_time=True) == expected
    assert on_stock(program) == expected
