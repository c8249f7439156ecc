"""TaskTable, folded from real recorded scenes and from hand-made edge cases."""

from __future__ import annotations

import asyncio
import inspect
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopviz.models.tasks import (
    CANCELLED,
    DONE,
    FAILED,
    READY,
    RUNNING,
    WAITING,
    TaskTable,
)
from loopviz.scenes import tasks as tasks_scene
from loopviz.scenes.tasks import TasksScene
from loopviz.trace import Event
from tracing import run_traced


async def _scene(variant: str) -> None:
    await TasksScene(asyncio.get_running_loop(), variant).run()


@cache
def recorded(variant: str, speed: float = 1.0) -> tuple[Event, ...]:
    _, events = run_traced(lambda: _scene(variant), virtual_time=True, speed=speed)
    return tuple(events)


def line_of(function: object, text: str) -> str:
    """``tasks.py:N`` of the line of ``function`` containing ``text``."""
    lines, first = inspect.getsourcelines(function)  # type: ignore[arg-type]
    offset = next(i for i, line in enumerate(lines) if text in line)
    return f"tasks.py:{first + offset}"


def ev(seq: int, t: float, kind: str, **fields: object) -> Event:
    return Event(seq, t, kind, fields)


def by_name(table: TaskTable, name: str):
    return next(task for task in table.tasks.values() if task.name == name)


# -- real scenes -------------------------------------------------------------------------------


def test_async_scene_interleaves_and_finishes() -> None:
    table = TaskTable(keep_finished=None)
    table.apply_all(recorded("async"))
    numbers, alphabet = by_name(table, "print_numbers"), by_name(table, "print_alphabet")
    assert numbers.state == alphabet.state == DONE
    assert numbers.outcome == "returned"
    assert numbers.steps == alphabet.steps == 27  # 26 sleeps, then the step that returns
    assert numbers.coro == "print_numbers"
    assert numbers.user
    assert numbers.site == line_of(TasksScene.run_async, "create_task(print_numbers()")
    assert numbers.parent is not None
    assert numbers.parent_name == table.tasks[numbers.parent].name
    assert numbers.awaits is None and numbers.line is None  # a finished task awaits nothing
    assert table.running is None
    # Virtual time: steps take no loop time; each task waited the whole 6.5 s.
    assert numbers.busy_time == 0
    assert numbers.wait_time == pytest.approx(6.5, abs=1e-3)
    assert numbers.busy_wall > 0


def test_a_suspended_task_shows_what_it_awaits_and_where() -> None:
    table = TaskTable()
    events = recorded("async")
    first_sleep = next(
        e for e in events if e.kind == "after_task_step" and e["name"] == "print_numbers"
    )
    table.apply_all(events[: events.index(first_sleep) + 1])
    numbers = by_name(table, "print_numbers")
    assert numbers.state == WAITING
    assert (numbers.awaits, numbers.await_kind, numbers.fd) == ("sleep(0.25)", "sleep", None)
    assert numbers.line == line_of(tasks_scene.print_numbers, "await asyncio.sleep(0.25)")
    assert numbers.source == "await asyncio.sleep(0.25)"
    assert by_name(table, "print_alphabet").state == READY  # spawned, not yet run


def test_sleep_zero_puts_the_task_back_in_the_ready_queue() -> None:
    table = TaskTable()
    events = recorded("blocking", speed=20)
    step = next(e for e in events if e.kind == "after_task_step" and e["awaits"] == "sleep(0)")
    table.apply_all(events[: events.index(step) + 1])
    assert table.tasks[step["task"]].state == READY
    table.apply(events[events.index(step) + 1])
    assert table.tasks[step["task"]].stalls == 1  # loop_stalled follows its step


def test_sync_scene_runs_everything_in_one_task() -> None:
    table = TaskTable(keep_finished=None)
    table.apply_all(recorded("sync"))
    (main,) = table.rows()  # the test's main task: the functions are awaited, not spawned
    assert main.steps == 53 and main.state == DONE
    assert main.wait_time == pytest.approx(13.0, abs=1e-3)


def test_at_most_one_task_runs_and_time_adds_up_at_every_event() -> None:
    table = TaskTable(keep_finished=None)
    for event in recorded("compare"):
        table.apply(event)
        running = [task for task in table.tasks.values() if task.state == RUNNING]
        assert len(running) <= 1
        assert [task.id for task in running] == ([table.running] if table.running else [])
        for task in table.tasks.values():
            end = task.finished_at if task.finished else table.now
            total = task.busy_at(end) + task.wait_at(end)
            assert total == pytest.approx(end - task.first_seen, abs=1e-9)


def test_outcomes_failed_and_cancelled_from_a_real_loop() -> None:
    async def boom() -> None:
        raise ValueError("no")

    async def forever() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        failing = asyncio.create_task(boom(), name="boom")
        sleeper = asyncio.create_task(forever(), name="forever")
        await asyncio.sleep(0.1)
        sleeper.cancel()
        await asyncio.gather(failing, sleeper, return_exceptions=True)

    _, events = run_traced(main, virtual_time=True)
    table = TaskTable(keep_finished=None)
    table.apply_all(events)
    assert by_name(table, "boom").state == FAILED
    assert "ValueError" in (by_name(table, "boom").detail or "")
    assert by_name(table, "forever").state == CANCELLED


# -- edge cases --------------------------------------------------------------------------------


def test_a_task_first_seen_mid_stream_appears_named_by_its_event() -> None:
    table = TaskTable()
    table.apply(ev(40, 2.0, "before_task_step", task=7, name="print_numbers"))
    task = table.tasks[7]
    assert (task.name, task.state, task.user, task.steps) == ("print_numbers", RUNNING, True, 1)
    assert table.running_task is task


def test_a_lost_after_task_step_does_not_leave_two_tasks_running() -> None:
    table = TaskTable()
    table.apply(ev(0, 0.0, "before_task_step", task=1, name="a"))
    table.apply(ev(1, 0.5, "before_task_step", task=2, name="b"))
    assert table.tasks[1].state == WAITING and table.tasks[1].busy_time == 0.5
    assert table.running == 2


def test_finished_tasks_are_kept_for_a_while_then_dropped() -> None:
    table = TaskTable(keep_finished=1.0)
    table.apply(ev(0, 0.0, "task_spawned", task=1, name="a", user=True))
    table.apply(ev(1, 0.5, "task_exited", task=1, name="a", outcome="returned", detail=""))
    table.apply(ev(2, 1.5, "clock", speed=1.0, paused=False, stepping=False))
    assert 1 in table.tasks
    table.apply(ev(3, 1.6, "clock", speed=1.0, paused=False, stepping=False))
    assert 1 not in table.tasks


def test_machinery_is_hidden_unless_asked_for_and_unknown_kinds_are_ignored() -> None:
    table = TaskTable()
    table.apply(ev(0, 0.0, "task_spawned", task=1, name="Task-1", user=False))
    table.apply(ev(1, 0.0, "task_spawned", task=2, name="worker", user=True))
    table.apply(ev(2, 0.0, "queue.published", scene="queue", id=1))
    table.apply(ev(3, 0.0, "something_new"))
    assert [task.name for task in table.rows()] == ["worker"]
    assert [task.name for task in table.rows(machinery=True)] == ["Task-1", "worker"]


# -- properties --------------------------------------------------------------------------------

_KINDS = (
    "task_spawned",
    "before_task_step",
    "after_task_step",
    "after_task_step_done",
    "task_exited",
)


@st.composite
def lossy_streams(draw: st.DrawFn) -> list[Event]:
    """Plausible task events with arbitrary ones missing: no event after a task finished."""
    steps = draw(
        st.lists(
            st.tuples(st.integers(1, 4), st.sampled_from(_KINDS), st.floats(0, 1, allow_nan=False)),
            max_size=60,
        )
    )
    events, t, finished = [], 0.0, set()
    for seq, (task, kind, dt) in enumerate(steps):
        if task in finished:
            continue
        t = round(t + dt, 6)
        fields: dict[str, object] = {"task": task, "name": f"t{task}"}
        if kind.startswith("after_task_step"):
            done = kind.endswith("done")
            fields.update(
                done=done,
                awaits=None if done else "sleep(1)",
                await_kind=None if done else "sleep",
                duration=0.0,
            )
            kind = "after_task_step"
            if done:
                finished.add(task)
        elif kind == "task_exited":
            fields.update(outcome="returned", detail="")
            finished.add(task)
        events.append(Event(seq, t, kind, fields))
    return events


@settings(max_examples=200, deadline=None)
@given(lossy_streams())
def test_property_one_runner_and_busy_plus_waiting_is_age(events: list[Event]) -> None:
    table = TaskTable(keep_finished=None)
    for event in events:
        table.apply(event)
        assert sum(task.state == RUNNING for task in table.tasks.values()) <= 1
        for task in table.tasks.values():
            end = task.finished_at if task.finished else table.now
            age = end - task.first_seen
            assert task.busy_at(end) + task.wait_at(end) == pytest.approx(age, abs=1e-9)


def test_a_task_woken_by_its_timer_is_ready_before_it_runs() -> None:
    """At the select after the timer fired, both sleepers' wake-ups are queued: ready."""
    import asyncio
    import contextlib
    import io

    from loopviz.models import TaskTable
    from loopviz.scenes.tasks import TasksScene
    from loopviz.trace import EventStream, new_event_loop

    loop = new_event_loop(virtual_time=True)
    stream = EventStream(loop)
    scene = TasksScene(loop, "async")
    with contextlib.redirect_stdout(io.StringIO()), asyncio.Runner(loop_factory=lambda: loop) as r:
        r.run(scene.run())
    table = TaskTable()
    seen_ready = 0
    for event in stream.read():
        table.apply(event)
        if event.kind == "before_io_wait" and event["ready_tasks"] and event.t > 0.2:
            states = {task.name: task.state for task in table.rows()}
            if states.get("print_numbers") == "ready":
                assert states["print_alphabet"] == "ready"
                seen_ready += 1
    assert seen_ready >= 20  # once per round of the 26, before each pair of steps


def test_a_task_whose_exit_was_dropped_is_closed_at_the_resync() -> None:
    """The buffer overflows while a task finishes; the loop's re-sync says it is gone."""
    import asyncio

    from loopviz.models import TaskTable
    from loopviz.trace import EventStream, new_event_loop

    async def short(release: asyncio.Event) -> None:
        await release.wait()
        for _ in range(5):
            await asyncio.sleep(0)

    async def main() -> None:
        release = asyncio.Event()
        task = asyncio.create_task(short(release), name="short")
        await asyncio.sleep(0)
        gate.set()  # the consumer reads now: "short" is known and still waiting
        while not reader_done.is_set():
            await asyncio.sleep(0.001)
        release.set()
        await task
        for _ in range(300):  # overflow the 64-record buffer: short's exit is lost
            await asyncio.sleep(0)
        second_gate.set()  # the consumer reads, sees the gap and asks for a re-sync
        while not second_read.is_set():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)  # the next select carries it

    import threading

    gate, reader_done = threading.Event(), threading.Event()
    second_gate, second_read = threading.Event(), threading.Event()
    loop = new_event_loop(capacity=64)
    stream = EventStream(loop)
    table = TaskTable()
    seen: list = []

    def reader() -> None:
        gate.wait(5)
        table.apply_all(stream.read())
        reader_done.set()
        second_gate.wait(5)
        seen.extend(stream.read())
        second_read.set()

    thread = threading.Thread(target=reader)
    thread.start()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        runner.run(main())
    thread.join()
    assert [t.state for t in table.rows() if t.name == "short"] == ["waiting"]
    events = seen + stream.read()
    assert any(e.kind == "events_dropped" for e in events)
    assert not any(e.kind == "task_exited" and e["name"] == "short" for e in events)
    table.apply_all(events)
    short_task = next(t for t in table.rows() if t.name == "short")
    assert short_task.state == "done"
    assert short_task.outcome == "ended (its exit event was lost)"


def eager_stream() -> list[Event]:
    """What the tracer writes when task 1 creates task 2 eagerly: task 2's first step runs
    inside task 1's (docs/events.md), then task 1 goes on and suspends."""
    return [
        ev(0, 0.0, "task_spawned", task=1, name="main", parent=None),
        ev(1, 0.0, "before_task_step", task=1, name="main"),
        ev(2, 0.1, "task_spawned", task=2, name="Task-2", parent=1),
        ev(3, 0.1, "before_task_step", task=2, name="Task-2"),
        ev(
            4,
            0.2,
            "after_task_step",
            task=2,
            name="Task-2",
            done=False,
            awaits="sleep(1)",
            await_kind="sleep",
            duration=0.1,
        ),
        ev(5, 0.2, "task_renamed", task=2, name="child"),
        ev(
            6,
            0.3,
            "after_task_step",
            task=1,
            name="main",
            done=False,
            awaits="sleep(2)",
            await_kind="sleep",
            duration=0.3,
        ),
    ]


def test_an_eager_tasks_first_step_runs_inside_its_parents() -> None:
    table = TaskTable()
    stream = eager_stream()
    table.apply_all(stream[:4])
    assert table.running == 2
    assert table.tasks[1].state == RUNNING  # suspended inside create_task, not waiting
    table.apply_all(stream[4:6])
    assert table.running == 1  # the parent's step goes on
    assert table.tasks[2].state == WAITING and table.tasks[2].name == "child"
    table.apply(stream[6])
    assert table.running is None
    assert table.tasks[1].state == WAITING


def test_finished_rows_leave_within_the_dashboards_repeat_pause() -> None:
    """A repeated scene's finished tasks must not pile up under the next run's rows."""
    table = TaskTable()
    for run, start in enumerate((0.0, 10.0)):
        task_id = 10 + run
        table.apply(ev(0, start, "task_spawned", task=task_id, name="print_numbers", user=True))
        table.apply(
            ev(
                1,
                start + 6.5,
                "task_exited",
                task=task_id,
                name="print_numbers",
                outcome="returned",
                detail="",
            )
        )
    table.expire(16.5 + 0.1)
    assert [t.id for t in table.rows()] == [11]
    table.expire(16.5 + 3.1)
    assert table.rows() == []
