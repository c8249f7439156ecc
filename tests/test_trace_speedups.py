"""The optional C hot path (``_speedups``) against the pure-Python tracer it replaces.

Both must write the same records: the programs below run once on the C parts (the proxy,
``create_task``, ``PollWatch``) and once on their Python twins (``pure_python=True``), and their
events must match field for field, apart from measured durations and stamps.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from loopviz.trace import core
from loopviz.trace.buffer import EventBuffer
from tracing import run_traced

MEASURED = {"t", "seq", "duration", "waited", "waited_wall"}
needs_c = pytest.mark.skipif(core.speedups is None, reason="the C module is not built")


def test_the_c_module_is_built_where_a_compiler_exists() -> None:
    """CI has a compiler: a silent fallback to pure Python would hide a broken build."""
    if os.environ.get("LOOPVIZ_PURE_PYTHON"):
        assert core.IMPLEMENTATION == "pure Python"
    elif shutil.which("cc") or shutil.which("gcc"):
        assert core.IMPLEMENTATION == "C"


async def interleave() -> list[str]:
    out: list[str] = []

    async def numbers() -> None:
        for i in range(1, 4):
            out.append(str(i))
            print(i)
            await asyncio.sleep(0.25)

    async def letters() -> None:
        for c in "abc":
            out.append(c)
            await asyncio.sleep(0.25)

    await asyncio.gather(numbers(), letters())
    return out


async def endings() -> list[str]:
    """Every way a task ends, and steps that await tasks, futures, queues and nested code."""

    async def returns_value() -> int:
        await asyncio.sleep(0)
        return 42

    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    async def sleeper() -> None:
        await asyncio.sleep(10)

    async def inner() -> None:
        await asyncio.sleep(0.02)

    async def nested() -> None:
        await inner()  # the user's coroutine awaits another: the general path walks the chain

    async def cancels_itself_last() -> None:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        # returns during the step that asked for the cancel: asyncio ends it cancelled

    queue: asyncio.Queue[int] = asyncio.Queue()

    async def consumer() -> int:
        return await queue.get()

    results = []
    value = asyncio.create_task(returns_value())
    failing = asyncio.create_task(fails())
    sleeping = asyncio.create_task(sleeper())
    getter = asyncio.create_task(consumer())
    await asyncio.sleep(0.005)
    queue.put_nowait(7)
    results.append(str(await value))
    results.append(str(await getter))
    with pytest.raises(ValueError):
        await failing
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    await nested()
    last = asyncio.create_task(cancels_itself_last())
    with pytest.raises(asyncio.CancelledError):
        await last
    results.append(str(last.cancelled()))
    return results


async def watching() -> list[str]:
    """Fds watched for reading, then for both (a modify), then not at all; a task in sock_recv."""
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    got: asyncio.Future[bytes] = loop.create_future()

    def readable() -> None:
        if not got.done():
            got.set_result(a.recv(10))

    loop.add_reader(a, readable)
    loop.add_writer(a, lambda: loop.remove_writer(a))
    await asyncio.sleep(0)
    b.send(b"ping")
    data = await got
    loop.remove_reader(a)

    async def receiver() -> bytes:
        return await loop.sock_recv(b, 10)

    task = asyncio.create_task(receiver(), name="receiver")
    await asyncio.sleep(0)
    a.send(b"pong")
    reply = await task
    a.close()
    b.close()
    return [data.decode(), reply.decode()]


def comparable(events: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Events without what is measured, and with asyncio's process-wide "Task-N" names."""

    def same(value: Any) -> Any:
        return re.sub(r"Task-\d+", "Task-N", value) if isinstance(value, str) else value

    return [
        (e.kind, {k: same(v) for k, v in e.fields.items() if k not in MEASURED}) for e in events
    ]


def frame_modes() -> list[str]:
    """How the C module can read frames here: in place (CPython 3.11, 3.13, 3.14) and through
    frame objects."""
    if core.speedups is None:
        return ["public"]
    before = core.speedups.frame_access()
    return ["in place", "public"] if before == "in place" else ["public"]


PROGRAMS = {"interleave": interleave, "endings": endings, "watching": watching}
if sys.version_info >= (3, 12):
    from test_trace_tasks import eager_main

    PROGRAMS["eager"] = eager_main  # nested steps, spawns recorded at the first step


@needs_c
@pytest.mark.parametrize("frames", frame_modes())
@pytest.mark.parametrize("program", PROGRAMS.values(), ids=PROGRAMS.keys())
def test_c_and_python_record_the_same_events(
    program: Callable[[], Coroutine[Any, Any, Any]], frames: str
) -> None:
    assert core.speedups is not None
    before = core.speedups.frame_access(frames)
    try:
        c_result, c_events = run_traced(program, virtual_time=True)
    finally:
        core.speedups.frame_access(before)
    py_result, py_events = run_traced(program, virtual_time=True, pure_python=True)
    assert c_result == py_result
    assert comparable(c_events) == comparable(py_events)
    assert [e.seq for e in c_events] == list(range(len(c_events)))
    if program is watching:  # the fd changes are there to compare, modify included
        changes = [(e.kind, e.fields.get("events")) for e in c_events if e.kind.startswith("fd_")]
        assert ("fd_watch", "rw") in changes and ("fd_unwatch", None) in changes


def test_the_traced_loop_keeps_asyncio_fast() -> None:
    """Stock code reads ``self._ready`` and the like all the time; CPython's fast path for that
    wants the loop's instance attributes to be the stock ones and an instance made by
    ``object.__new__``. Measured on W3: three attributes of our own cost 2 to 4% on 3.11,
    2% on 3.13 and 8% on 3.14; a C base class as much again."""
    from loopviz.trace import new_event_loop

    stock = asyncio.SelectorEventLoop()
    traced = new_event_loop()
    try:
        assert list(vars(traced)) == list(vars(stock))
        assert type(traced).__new__ is object.__new__
        assert traced.tracer is not None and traced.gate is not None
    finally:
        stock.close()
        traced.close()
    assert traced.time() >= 0.0 and traced.tracer is not None  # still there once closed


@needs_c
def test_the_c_proxy_is_what_the_task_steps() -> None:
    """The C task must reach the step through am_send, not a looked-up ``send`` method."""
    from loopviz.trace.proxy import CTracedCoroutine

    async def main() -> str:
        async def child() -> str:
            await asyncio.sleep(0)
            return "done"

        task = asyncio.create_task(child())
        assert type(task.get_coro()) is CTracedCoroutine
        return await task

    original = CTracedCoroutine.send
    try:

        def refuse(self: Any, value: Any) -> Any:
            raise AssertionError("the task looked up send() instead of am_send")

        CTracedCoroutine.send = refuse  # type: ignore[method-assign]
        result, events = run_traced(main)
    finally:
        CTracedCoroutine.send = original  # type: ignore[method-assign]
    assert result == "done"
    assert any(e.kind == "after_task_step" for e in events)


@pytest.mark.parametrize("ring", [True, False], ids=["ring", "deque"])
def test_a_full_buffer_drops_the_oldest_and_keeps_order(ring: bool) -> None:
    buffer = EventBuffer(16, ring=ring)
    for seq in range(40):
        buffer.append((99, seq, float(seq)))
    assert len(buffer) == 16
    first = buffer.drain(limit=5)
    assert [r[1] for r in first] == [24, 25, 26, 27, 28]
    rest = buffer.drain()
    assert [r[1] for r in rest] == list(range(29, 40))
    assert len(buffer) == 0 and buffer.drain() == []


def test_the_pure_python_fallback_passes_the_tracer_tests() -> None:
    """Without the C module (no compiler at install time) loopviz must work the same."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, LOOPVIZ_PURE_PYTHON="1")
    probe = subprocess.run(
        [sys.executable, "-c", "from loopviz.trace.core import IMPLEMENTATION as I; print(I)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "pure Python"
    tests = ["tests/test_trace_tasks.py", "tests/test_trace_io.py", "tests/test_trace_control.py"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


@needs_c
@pytest.mark.parametrize("hidden", [1, 12], ids=["few-hidden-fds", "many-hidden-fds"])
def test_poll_watch_and_ready_fds_leave_out_the_loops_own_fds(hidden: int) -> None:
    """The loop's own fds are compared as C ints when there are few, through the set when
    there are more: either way they never appear, and every other fd does."""
    import selectors

    from loopviz.trace.clock import DilatedClock
    from loopviz.trace.records import FD_UNWATCH, FD_WATCH
    from loopviz.trace.tracer import Tracer

    assert core.speedups is not None
    tracer = Tracer(DilatedClock(1.0))
    tracer.buffer.drain()
    selector = selectors.EpollSelector()
    watch = core.speedups.PollWatch(selector._selector, tracer, FD_WATCH, FD_UNWATCH, 1, 4)
    pairs = [socket.socketpair() for _ in range(hidden + 1)]
    try:
        own = frozenset(a.fileno() for a, _ in pairs[:hidden])
        shown = pairs[-1][0].fileno()
        watch.internal = own
        watch.recording = True
        assert watch.internal == own
        for a, _ in pairs:
            watch.register(a.fileno(), 1)
        for a, _ in pairs:
            watch.unregister(a.fileno())
        records = [(r[0], r[3]) for r in tracer.buffer.drain()]
        assert records == [(FD_WATCH, shown), (FD_UNWATCH, shown)]

        events = [((None, fd, None, None), 1) for fd in [*own, shown]]
        assert core.speedups.ready_fds(events, own) == ((shown, 1),)
    finally:
        selector.close()
        for a, b in pairs:
            a.close()
            b.close()


@needs_c
def test_freed_proxies_are_reused_and_abandoned_tasks_still_collected() -> None:
    """A dead proxy is kept for the next task (no new GC allocation), yet a task abandoned
    while pending, in a cycle through its proxy, is still collected."""
    import gc
    import weakref

    from loopviz.trace import new_event_loop
    from loopviz.trace.proxy import CTracedCoroutine

    async def finishes() -> None:
        await asyncio.sleep(0)

    async def stuck(tasks: list[asyncio.Task[Any]]) -> None:
        tasks.append(asyncio.current_task())  # type: ignore[arg-type]  # the cycle
        await asyncio.get_running_loop().create_future()  # never resolved

    loop = new_event_loop()
    loop.set_exception_handler(lambda loop, context: None)  # "destroyed but pending"
    try:
        task = loop.create_task(finishes())
        loop.run_until_complete(task)
        first = id(task.get_coro())
        assert type(task.get_coro()) is CTracedCoroutine
        del task
        task = loop.create_task(finishes())
        assert id(task.get_coro()) == first  # the same memory, a new proxy
        loop.run_until_complete(task)
        del task
        gc.collect()
        held: list[asyncio.Task[Any]] = []
        loop.create_task(stuck(held))
        loop.run_until_complete(asyncio.sleep(0))
        coro = weakref.ref(held[0].get_coro().wrapped)
        del held
    finally:
        loop.close()
    del loop
    gc.collect()
    assert coro() is None
