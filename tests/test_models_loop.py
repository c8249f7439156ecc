"""LoopState, folded from real recorded runs and from hand-made edge cases."""

from __future__ import annotations

import asyncio
from functools import cache

import pytest

from loopviz.models.loop_state import (
    FIRE_TIMERS,
    RUN_READY,
    WAIT_IN_SELECT,
    LoopState,
    stall_loop_seconds,
)
from loopviz.scenes.tasks import TasksScene
from loopviz.trace import Event, EventStream, new_event_loop
from tracing import run_traced


async def _scene(variant: str) -> None:
    await TasksScene(asyncio.get_running_loop(), variant).run()


@cache
def recorded(variant: str, speed: float = 1.0, virtual: bool = True) -> tuple[Event, ...]:
    _, events = run_traced(lambda: _scene(variant), virtual_time=virtual, speed=speed)
    return tuple(events)


def ev(seq: int, t: float, kind: str, **fields: object) -> Event:
    return Event(seq, t, kind, fields)


def test_phase_iteration_and_timers_follow_the_loop() -> None:
    state = LoopState()
    phases = set()
    for event in recorded("async"):
        state.apply(event)
        phases.add(state.phase)
        if event.kind == "before_io_wait":
            assert state.phase == WAIT_IN_SELECT and state.waiting_in_select
            assert state.iteration == event["iteration"]
            assert (state.ready, state.timers) == (event["ready"], event["timers"])
            if event["ready"] == 0 and event["timeout"] is not None and event["timers"]:
                assert state.next_deadline == pytest.approx(event.t + event["timeout"], abs=1e-6)
        elif event.kind == "after_io_wait":
            assert state.phase == (FIRE_TIMERS if event["timers_due"] else RUN_READY)
        elif event.kind in ("before_task_step", "after_task_step"):
            assert state.phase == RUN_READY
    assert phases == {None, WAIT_IN_SELECT, FIRE_TIMERS, RUN_READY}  # None: not started yet
    assert state.iteration == max(e["iteration"] for e in recorded("async") if "iteration" in e)
    assert state.timers == 0 and state.next_deadline is None
    assert state.now == pytest.approx(6.5, abs=1e-3)


def test_after_io_wait_adds_the_ready_fds_and_due_timers_to_the_queue() -> None:
    state = LoopState()
    state.apply(ev(0, 0.0, "before_io_wait", iteration=1, timeout=0.5, fds=[], ready=0, timers=3))
    assert state.next_deadline == 0.5
    ready = [{"fd": 4, "events": "r", "label": "a"}, {"fd": 5, "events": "rw", "label": "b"}]
    state.apply(
        ev(
            1,
            0.5,
            "after_io_wait",
            iteration=1,
            ready_fds=ready,
            waited=0.5,
            waited_wall=0.5,
            timers_due=2,
        )
    )
    assert (state.ready, state.timers, state.phase) == (5, 1, FIRE_TIMERS)


def test_a_polling_select_keeps_a_deadline_still_ahead() -> None:
    state = LoopState()
    state.apply(ev(0, 0.0, "before_io_wait", iteration=1, timeout=1.0, fds=[], ready=0, timers=1))
    state.apply(ev(1, 0.2, "before_io_wait", iteration=2, timeout=0, fds=[], ready=1, timers=1))
    assert state.next_deadline == 1.0
    state.apply(ev(2, 1.5, "before_io_wait", iteration=3, timeout=0, fds=[], ready=1, timers=1))
    assert state.next_deadline is None


def test_clock_events_set_speed_and_pause() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_speed(4.0)  # type: ignore[attr-defined]
        await asyncio.sleep(0.1)

    _, events = run_traced(main, virtual_time=True)
    state = LoopState()
    state.apply_all(events)
    assert state.speed == 4.0 and not state.paused
    state.apply(ev(99, 9.0, "clock", speed=0.5, paused=True, stepping=True))
    assert (state.speed, state.paused, state.stepping) == (0.5, True, True)


def test_dropped_events_are_counted_from_a_real_overflow() -> None:
    async def busy() -> None:
        for _ in range(200):
            await asyncio.sleep(0)

    loop = new_event_loop(virtual_time=True, capacity=64)
    stream = EventStream(loop)
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        runner.run(busy())
    state = LoopState()
    state.apply_all(stream.read())
    assert stream.dropped > 0 and state.dropped == stream.dropped


def test_blocking_steps_are_stalls_measured_in_loop_time() -> None:
    state = LoopState()  # the speed is not in the stream: the stall's span says 0.25 s anyway
    state.apply_all(recorded("blocking", speed=20, virtual=False))
    assert state.stalls == 52
    stall = state.last_stall
    assert stall is not None and stall.name == "print_alphabet"
    assert stall.duration == pytest.approx(0.25 / 20, rel=0.5)
    # Loop time is what the clock saw: the wall time at 20x. A busy machine makes the sleep
    # overrun, never underrun, so the loop time is at least the 0.25 s the notes sleep.
    assert stall.loop_duration >= 0.25 - 0.001
    assert stall.loop_duration == pytest.approx(stall.duration * 20, rel=0.05)


def test_stall_loop_seconds_prefers_what_the_clock_saw() -> None:
    assert stall_loop_seconds(0.0125, 20, 0.25) == 0.25
    assert stall_loop_seconds(0.0125, 20, 0.0) == 0.25  # a frozen virtual clock
    assert stall_loop_seconds(0.3, 1.0, None) == 0.3


def test_unknown_kinds_and_scene_events_only_advance_the_clock() -> None:
    state = LoopState()
    state.apply(ev(0, 1.25, "queue.acked", scene="queue"))
    state.apply(ev(1, 1.5, "future_kind"))
    assert state == LoopState(now=1.5)


def test_the_parents_step_goes_on_after_an_eager_tasks_first_step() -> None:
    from test_models_tasks import eager_stream

    state = LoopState()
    stream = eager_stream()
    for event in stream[:5]:
        state.apply(event)
    assert state.running_task == 1 and state.last_step_span == 0.1
    state.apply(stream[6])
    assert state.running_task is None and state.last_step_span == 0.3
