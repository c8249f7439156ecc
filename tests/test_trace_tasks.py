"""The traced loop's task events, as exact sequences."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import sys
import time
from typing import Any

import pytest

from loopviz.scenes import tasks as tasks_scene
from loopviz.trace import new_event_loop
from loopviz.trace.proxy import TracedCoroutine
from tracing import kinds, run_traced, user_steps


def line_of(function: object, text: str) -> int:
    """The file line number of the line of ``function`` that reads ``text``."""
    lines, first = inspect.getsourcelines(function)  # type: ignore[arg-type]
    return first + next(i for i, line in enumerate(lines) if line.strip() == text)


async def classic_main() -> None:
    task1 = asyncio.create_task(tasks_scene.print_numbers(), name="print_numbers")
    asyncio.create_task(tasks_scene.print_alphabet(), name="print_alphabet")  # noqa: RUF006
    await task1


def test_two_tasks_interleave_one_step_each() -> None:
    _, events = run_traced(classic_main, virtual_time=True)
    outputs = [(e["name"], e["text"]) for e in kinds(events, "output")]
    expected = []
    for n, letter in zip(range(1, 27), "abcdefghijklmnopqrstuvwxyz", strict=True):
        expected += [("print_numbers", f"{n} -> "), ("print_alphabet", f"{letter}\n")]
    assert outputs == expected
    steps = [s for s in user_steps(events) if s[1].startswith("print_")]
    # Each task runs one step at a time: before/after pairs alternate numbers, letters, ...
    assert (
        steps[:8]
        == [
            ("before_task_step", "print_numbers"),
            ("after_task_step", "print_numbers"),
            ("before_task_step", "print_alphabet"),
            ("after_task_step", "print_alphabet"),
        ]
        * 2
    )


def test_after_step_names_sleep_and_the_source_line() -> None:
    _, events = run_traced(classic_main, virtual_time=True)
    first = next(e for e in kinds(events, "after_task_step") if e["name"] == "print_numbers")
    assert first["awaits"] == "sleep(0.25)"
    assert first["await_kind"] == "sleep"
    assert first["done"] is False
    sleep_line = line_of(tasks_scene.print_numbers, "await asyncio.sleep(0.25)")
    assert first["line"] == f"tasks.py:{sleep_line}"
    assert first["source"] == "await asyncio.sleep(0.25)"
    assert first["path"] == tasks_scene.__file__


def test_spawn_names_parent_site_and_user_flag() -> None:
    _, events = run_traced(classic_main, virtual_time=True)
    spawned = {e["name"]: e for e in kinds(events, "task_spawned")}
    numbers = spawned["print_numbers"]
    assert numbers["coro"] == "print_numbers"
    main = next(e for e in kinds(events, "task_spawned") if e["coro"] == "classic_main")
    assert numbers["parent"] == main["task"]
    assert numbers["parent_name"] == main["name"]
    assert numbers["site_source"].startswith(
        "task1 = asyncio.create_task(tasks_scene.print_numbers()"
    )
    assert numbers["user"] is True
    # asyncio.Runner's own shutdown tasks are machinery, not the lesson.
    assert any(not e["user"] for e in spawned.values())


def test_virtual_time_runs_the_classic_demo_in_exactly_6_5_seconds() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await classic_main()
        return loop.time() - started

    took, _ = run_traced(main, virtual_time=True)
    assert took == pytest.approx(6.5, abs=1e-6)


def test_task_exit_outcomes() -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    async def sleeps() -> None:
        await asyncio.sleep(10)

    async def returns() -> int:
        return 42

    async def main() -> None:
        bad = asyncio.create_task(fails(), name="fails")
        slow = asyncio.create_task(sleeps(), name="sleeps")
        good = asyncio.create_task(returns(), name="returns")
        await asyncio.sleep(1)
        slow.cancel()
        await asyncio.gather(bad, slow, good, return_exceptions=True)

    _, events = run_traced(main, virtual_time=True)
    exits = {e["name"]: (e["outcome"], e["detail"]) for e in kinds(events, "task_exited")}
    assert exits["fails"] == ("failed", "ValueError: boom")
    assert exits["sleeps"] == ("cancelled", "")
    assert exits["returns"] == ("returned", "42")


def test_awaiting_a_task_a_queue_and_an_event() -> None:
    async def main() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        flag = asyncio.Event()

        async def getter() -> int:
            return await queue.get()

        async def waiter() -> None:
            await flag.wait()

        g = asyncio.create_task(getter(), name="getter")
        w = asyncio.create_task(waiter(), name="waiter")
        await asyncio.sleep(0)
        queue.put_nowait(1)
        flag.set()
        await g
        await w

    _, events = run_traced(main, virtual_time=True)
    awaits = {(e["name"], e["awaits"]) for e in kinds(events, "after_task_step") if not e["done"]}
    assert ("getter", "Queue.get") in awaits
    assert ("waiter", "Event.wait") in awaits
    main_name = kinds(events, "task_spawned")[0]["name"]
    assert (main_name, "task getter") in awaits
    assert (main_name, "sleep(0)") in awaits


def test_stalled_step_names_the_blocking_line() -> None:
    async def main() -> None:
        await asyncio.sleep(0)
        time.sleep(0.3)  # the blocking call
        await asyncio.sleep(0)

    _, events = run_traced(main)
    stalls = kinds(events, "loop_stalled")
    assert len(stalls) == 1
    assert stalls[0]["source"] == "time.sleep(0.3)  # the blocking call"
    assert stalls[0]["duration"] >= 0.3
    assert stalls[0]["task"] == kinds(events, "task_spawned")[0]["task"]


def test_the_proxy_is_a_coroutine_without_next() -> None:
    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        coro = task.get_coro()
        assert isinstance(coro, TracedCoroutine)
        assert not hasattr(coro, "__next__")
        assert coro.__qualname__.endswith("main")
        assert "main" in repr(task)
        assert task.get_stack()

    run_traced(main)


def test_one_proxy_class_for_every_loop() -> None:
    for _ in range(3):
        loop = new_event_loop()
        try:
            task = loop.create_task(asyncio.sleep(0))
            assert type(task.get_coro()) is TracedCoroutine
            loop.run_until_complete(task)
        finally:
            loop.close()


def test_events_are_strictly_ordered_and_steps_nest_only_when_eager() -> None:
    async def worker(delays: list[float]) -> None:
        for d in delays:
            await asyncio.sleep(d)

    async def main() -> None:
        delays = itertools.cycle([0.0, 0.01, 0.05, 0.02])
        async with asyncio.TaskGroup() as group:
            for i in range(10):
                group.create_task(worker([next(delays) for _ in range(5)]), name=f"w{i}")

    _, events = run_traced(main, virtual_time=True)
    assert [e.seq for e in events] == list(range(len(events)))
    assert all(a.t <= b.t for a, b in itertools.pairwise(events))
    running = None
    for e in events:
        if e.kind == "before_task_step":
            assert running is None
            running = e["task"]
        elif e.kind == "after_task_step":
            assert running == e["task"]
            running = None


def test_a_task_cancelled_in_its_last_step_is_reported_cancelled() -> None:
    async def job() -> int:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        return 1

    async def main() -> bool:
        task = asyncio.create_task(job(), name="job")
        await asyncio.wait([task])
        return task.cancelled()

    cancelled, events = run_traced(main)
    assert cancelled
    exit_event = next(e for e in kinds(events, "task_exited") if e["name"] == "job")
    assert exit_event["outcome"] == "cancelled"


def test_output_is_credited_to_whoever_printed_it() -> None:
    async def worker() -> None:
        print("from the task")
        await asyncio.sleep(0)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(print, "from a plain callback")
        await asyncio.create_task(worker(), name="worker")

    _, events = run_traced(main)
    printed = {e["text"]: e["name"] for e in kinds(events, "output")}
    assert printed == {"from a plain callback\n": None, "from the task\n": "worker"}


def test_blocking_literal_is_synchronous_code() -> None:
    from loopviz.scenes.tasks import TasksScene
    from loopviz.trace import EventStream, capture_output

    loop = new_event_loop(speed=20)
    stream = EventStream(loop)
    scene = TasksScene(loop, "blocking-literal")
    with (
        capture_output(loop.tracer),
        asyncio.Runner(loop_factory=lambda: loop) as runner,
    ):
        runner.run(scene.run())
    events = stream.read()
    text = "".join(e["text"] for e in kinds(events, "output"))
    assert text.startswith("1 -> 2 -> 3 ->")  # all numbers first: no interleaving
    assert text.index("26 ->") < text.index("a\n")
    stalls = kinds(events, "loop_stalled")
    assert [s["name"] for s in stalls] == ["print_numbers", "print_alphabet"]
    assert all("time.sleep" in s["source"] for s in stalls)


needs_eager_tasks = pytest.mark.skipif(
    sys.version_info < (3, 12), reason="asyncio has eager tasks from 3.12 on"
)


async def eager_main() -> list[int]:
    """Two tasks started eagerly: one ends within its first step, one suspends in it."""
    asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]

    async def quick() -> int:
        print("quick ran")
        return 1

    async def slow() -> int:
        print("slow started")
        await asyncio.sleep(0.01)
        return 2

    print("before")
    first = asyncio.create_task(quick(), name="quick")
    second = asyncio.create_task(slow(), name="slow")
    print("after")
    return [await first, await second]


@needs_eager_tasks
@pytest.mark.parametrize("pure_python", [False, True], ids=["C", "Python"])
def test_an_eager_tasks_first_step_nests_in_the_step_that_created_it(pure_python: bool) -> None:
    result, events = run_traced(eager_main, virtual_time=True, pure_python=pure_python)
    assert result == [1, 2]
    names = {e["task"]: e["name"] for e in kinds(events, "task_spawned", "task_renamed")}
    quick = names_of(events)["quick"]
    main_id = next(e["parent"] for e in kinds(events, "task_spawned") if e["task"] == quick)
    names[main_id] = "main"  # the runner's task, named Task-N by asyncio
    story = []
    for e in kinds(
        events, "task_spawned", "before_task_step", "after_task_step", "task_exited", "output"
    ):
        if e.kind == "output":
            story.append(("output", names.get(e["task"]), e["text"]))
        elif names.get(e["task"]) in ("main", "quick", "slow"):
            story.append((e.kind, names[e["task"]]))
    main_first_step = story[
        story.index(("before_task_step", "main")) : story.index(("after_task_step", "main")) + 1
    ]
    assert main_first_step == [
        ("before_task_step", "main"),
        ("output", "main", "before\n"),
        ("task_spawned", "quick"),
        ("before_task_step", "quick"),
        ("output", "quick", "quick ran\n"),
        ("after_task_step", "quick"),
        ("task_exited", "quick"),
        ("task_spawned", "slow"),
        ("before_task_step", "slow"),
        ("output", "slow", "slow started\n"),
        ("after_task_step", "slow"),
        ("output", "main", "after\n"),
        ("after_task_step", "main"),
    ]
    spawned = {names[e["task"]]: e for e in kinds(events, "task_spawned")}
    assert spawned["quick"]["parent"] == spawned["slow"]["parent"] == main_id
    assert spawned["slow"]["site"].startswith("test_trace_tasks.py:")
    slow_id = names_of(events)["slow"]
    slow_step = next(e for e in kinds(events, "after_task_step") if e["task"] == slow_id)
    assert slow_step["awaits"] == "sleep(0.01)"
    renamed = {e["task"]: e["name"] for e in kinds(events, "task_renamed")}
    if sys.version_info < (3, 14):  # a task factory's task is named after its first step
        assert set(renamed.values()) == {"quick", "slow"}
    exits = {e["task"]: e["outcome"] for e in kinds(events, "task_exited")}
    assert exits[quick] == exits[slow_id] == "returned"
    assert [e.seq for e in events] == list(range(len(events)))


def names_of(events: list[Any]) -> dict[str, int]:
    """Task ids by the name each task ended up with."""
    return {e["name"]: e["task"] for e in kinds(events, "task_spawned", "task_renamed")}


@pytest.mark.skipif(sys.version_info < (3, 14), reason="create_task(eager_start=) is new in 3.14")
def test_eager_start_is_traced_like_an_eager_factory() -> None:
    async def child() -> str:
        return "done at once"

    async def main() -> str:
        task = asyncio.create_task(child(), name="child", eager_start=True)  # type: ignore[call-arg]
        assert task.done()
        return await task

    result, events = run_traced(main, virtual_time=True)
    assert result == "done at once"
    child_id = names_of(events)["child"]
    child_events = [e.kind for e in events if e.fields.get("task") == child_id]
    assert child_events[:2] == ["task_spawned", "before_task_step"]
    assert child_events[-1] == "task_exited"


async def three_named_tasks() -> list[str]:
    async def worker(n: int) -> str:
        await asyncio.sleep(0.01 * n)
        await asyncio.sleep(0)
        return f"w{n}"

    tasks = [asyncio.create_task(worker(n), name=f"w{n}") for n in range(3)]
    return list(await asyncio.gather(*tasks))


def task_story(events: list[Any]) -> list[tuple[str, str, str | None]]:
    """Each task event as (kind, task name, what it awaits)."""
    names = {e["task"]: e["name"] for e in kinds(events, "task_spawned", "task_renamed")}
    return [
        (e.kind, names.get(e["task"], "?"), e.get("awaits"))
        for e in kinds(events, "task_spawned", "before_task_step", "after_task_step", "task_exited")
        if names.get(e["task"], "").startswith("w")
    ]


def test_tasks_of_asyncios_python_task_class_are_traced_alike() -> None:
    """``asyncio.tasks._PyTask`` steps the proxy through ``send``, the C Task through its
    ``am_send`` slot: a task factory that makes Python tasks must give the same story."""

    async def with_python_tasks() -> list[str]:
        def factory(loop: Any, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            return asyncio.tasks._PyTask(coro, loop=loop, **kwargs)  # type: ignore[attr-defined]

        asyncio.get_running_loop().set_task_factory(factory)
        return await three_named_tasks()

    c_result, c_events = run_traced(three_named_tasks, virtual_time=True)
    py_result, py_events = run_traced(with_python_tasks, virtual_time=True)
    assert c_result == py_result == ["w0", "w1", "w2"]
    assert task_story(py_events) == task_story(c_events)
    assert ("after_task_step", "w2", "sleep(0.02)") in task_story(py_events)


@pytest.mark.skipif(sys.version_info < (3, 14), reason="asyncio.capture_call_graph is new in 3.14")
def test_asyncios_call_graph_sees_through_the_proxy() -> None:
    """3.14's call graph of a suspended task walks ``task.get_coro()``'s ``cr_await`` chain:
    through the proxy it must find the same frames as on a stock loop."""

    async def leaf() -> None:
        await asyncio.sleep(0.01)

    async def middle() -> None:
        await leaf()

    async def program() -> list[str]:
        child = asyncio.create_task(middle(), name="middle")
        await asyncio.sleep(0)  # the child runs to its sleep
        graph = asyncio.capture_call_graph(child)  # type: ignore[attr-defined]
        await child
        return [entry.frame.f_code.co_name for entry in graph.call_stack]

    stock = asyncio.run(program())
    traced, _ = run_traced(program, virtual_time=True)
    assert traced == stock
    assert "middle" in traced and "leaf" in traced


@pytest.mark.parametrize("pure_python", [False, True], ids=["C", "Python"])
def test_a_task_factory_that_takes_no_keywords_still_works(pure_python: bool) -> None:
    """asyncio passes a factory only the keywords ``create_task`` was given; so must we."""
    made: list[asyncio.Task[Any]] = []

    async def child() -> int:
        await asyncio.sleep(0)
        return 5

    async def main() -> int:
        def factory(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[Any]:
            made.append(asyncio.Task(coro, loop=loop))
            return made[-1]

        asyncio.get_running_loop().set_task_factory(factory)  # type: ignore[arg-type]
        return await asyncio.ensure_future(child())  # create_task(coro), no keywords

    result, events = run_traced(main, virtual_time=True, pure_python=pure_python)
    assert result == 5
    assert made[0].get_coro().__qualname__.endswith("child")
    spawned = [e for e in kinds(events, "task_spawned") if e["coro"].endswith("child")]
    assert len(spawned) == 1
    child_steps = kinds(events, "after_task_step")
    assert any(e["task"] == spawned[0]["task"] and e["awaits"] == "sleep(0)" for e in child_steps)


@pytest.mark.parametrize("ends", ["suspended", "returned"])
def test_output_is_stamped_with_the_end_of_the_step_that_printed_it(ends: str) -> None:
    """A step's output is one event, gathered until the step ends: its ``t`` is the step's end
    (the ``t`` of the ``after_task_step`` that follows it), never later."""

    async def printer() -> None:
        print("printed early in the step")
        time.sleep(0.02)  # the step goes on well after the print
        if ends == "suspended":
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.create_task(printer(), name="printer")

    _, events = run_traced(main)
    mine = [e for e in events if e.get("name") == "printer" and e.kind != "task_spawned"]
    at = next(i for i, e in enumerate(mine) if e.kind == "output")
    end = mine[at + 1]
    assert end.kind == "after_task_step" and end["done"] == (ends == "returned")
    assert mine[at].t == end.t
