"""The lessons under the controls a class uses: stepped, a scene tells the same story as running.

Each test steps a real scene with ``t`` (``step_task``) the way the dashboard does and compares
what the events say with what the scene teaches.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from loopviz.runner import SceneRunner, SceneSpec
from loopviz.trace import Event
from tracing import LoopThread, kinds

#: Stepping at 20x keeps the blocking calls short (0.25 s of loop time is 12.5 ms of wall time).
SPEED = 20


def step_tasks_until_finished(runner: SceneRunner, most: int = 400) -> list[Event]:
    """Press ``t`` until the scene finishes; return every event."""
    gate = runner.loop.gate
    events: list[Event] = []
    for _ in range(most):
        deadline = time.monotonic() + 10
        while gate.waiting_at is None and runner.running:
            assert time.monotonic() < deadline, "the loop never stopped at its gate"
            time.sleep(0.001)
        events += runner.stream.read()
        if kinds(events, "scene.finished", "scene.failed"):
            return events
        runner.loop.step_task()
        time.sleep(0.002)  # let the loop thread leave the gate before looking again
    raise AssertionError(f"the scene did not finish in {most} steps")


@pytest.mark.parametrize(
    ("variant", "took"),
    [("blocking", 13.0), ("blocking-literal", 13.0), ("async", 6.5)],
)
def test_stepping_a_tasks_scene_takes_the_loop_time_running_takes(
    variant: str, took: float
) -> None:
    """Stepped with ``t``, ``time.sleep(0.25)`` still costs 0.25 s of loop time: the blocking
    variants take 13 s as they do running (stepping used to show the blocking calls as free:
    0.00 s), and the async one still takes 6.5 s (waiting for a timer costs nothing)."""
    runner = SceneRunner([SceneSpec("tasks", variant)], speed=SPEED, paused=True)
    runner.start()
    try:
        events = step_tasks_until_finished(runner)
    finally:
        assert runner.stop(), "the traced loop did not stop"
    finished = kinds(events, "scene.finished")
    assert finished, kinds(events, "scene.failed")
    assert finished[0]["took"] == pytest.approx(took, abs=0.5)
    outputs = [e.t for e in kinds(events, "output")]
    assert outputs == sorted(outputs)
    if variant == "blocking":  # each item printed 0.25 s after the one before it
        gaps = [b - a for a, b in itertools.pairwise(outputs)]
        assert min(gaps) >= 0.2, gaps


def test_a_blocking_call_in_a_step_moves_the_clock_and_the_gate_stops_it() -> None:
    """The clock runs while a step it was given runs, and stands still at the gate."""

    async def blocker() -> None:
        for _ in range(3):
            time.sleep(0.05)  # 0.1 s of loop time at 2x
            await asyncio.sleep(0)

    with LoopThread(blocker, paused=True, speed=2) as run:
        run.wait_until_stopped()
        before = run.loop.time()
        run.loop.step_task()
        time.sleep(0.02)
        run.wait_until_stopped()
        after = run.loop.time()
        assert after - before >= 0.1
        time.sleep(0.2)
        assert run.loop.time() == pytest.approx(after, abs=1e-6)  # the gate: no time passes
        began, ended = kinds(run.read(), "before_task_step", "after_task_step")[-2:]
        assert (began.kind, ended.kind) == ("before_task_step", "after_task_step")
        assert ended.t - began.t >= 0.1
        run.loop.resume()


def test_the_loop_bar_counts_are_true_at_every_stop_of_the_gate() -> None:
    """Paused between steps, the run queue and timer counts the models hold are the loop's
    own, not what they were before the last ``select`` (it said "ready queue 2 timers 0" while
    both tasks slept)."""
    from loopviz.models.loop_state import LoopState

    runner = SceneRunner([SceneSpec("tasks", "async")], speed=SPEED, paused=True)
    state = LoopState()
    loop = runner.loop
    runner.start()
    try:
        seen = set()
        for press in range(40):
            deadline = time.monotonic() + 10
            held = False
            while not held:  # until the loop says the gate holds it again
                assert time.monotonic() < deadline, "the loop never stopped at its gate"
                batch = runner.stream.read()
                state.apply_all(batch)
                held = any(e.kind == "loop_held" for e in batch)
                time.sleep(0.001)
            # The loop thread is held at the gate: its queues can be read from here.
            truth = (len(loop._ready), len(loop._scheduled))
            assert (state.ready, state.timers) == truth, f"press {press}"
            live = [h.when() for h in loop._scheduled if not h.cancelled()]
            assert state.next_deadline == (round(min(live), 6) if live else None)
            seen.add(truth)
            if press % 3 == 2:
                loop.step()  # n: the rest of an iteration
            else:
                loop.step_task()  # t
        assert len(seen) > 2  # the counts did change on the way
    finally:
        assert runner.stop(), "the traced loop did not stop"


NOTES_LOG = [
    "Non Blocking - creating socket",
    "Non Blocking - connecting",
    "Non Blocking - connected",
    "Non Blocking - waiting",
    "Non Blocking - sending",
    "Non Blocking - sent: 7",
    "Non Blocking - waiting",
    "Non Blocking - waiting",
    "Non Blocking - waiting",
    "Non Blocking - reading",
    "Non Blocking - data: 7",
    "Non Blocking - closing",
]


@pytest.mark.parametrize(
    ("stepped", "pace"),
    [(True, 0.05), (True, 0.0), (False, 0.0)],
    ids=["stepped", "stepped-quickly", "running"],
)
def test_the_notes_select_loop_can_be_walked_through_call_by_call(
    stepped: bool, pace: float
) -> None:
    """``create_nonblocking`` (sockets --variant select): stepped with ``t`` its thread makes
    the same select calls, in the same loop time, as running: writable -> send, two 0.5 s
    timeouts while the server takes 1.25 s, readable -> recv -> close; its log lines are the
    notes' own. While the loop is held, the thread makes no call at all. Quick presses (a
    held-down key) must not carry the clock past the thread's 0.5 s timeout before the thread
    looked: it used to give 'w, timeout, r' with a select that 'waited 0.75 s'."""
    spec = SceneSpec("sockets", "select", {"rounds": 1})
    runner = SceneRunner([spec], speed=1 if stepped else 4, paused=stepped)
    runner.start()
    try:
        if stepped:
            events: list[Event] = []
            for _ in range(100):
                deadline = time.monotonic() + 10
                while runner.loop.gate.waiting_at is None and runner.running:
                    assert time.monotonic() < deadline, "the loop never stopped at its gate"
                    time.sleep(0.001)
                time.sleep(pace)  # held: the thread must not run ahead meanwhile
                batch = runner.stream.read()
                events += batch
                if pace:
                    assert len(kinds(batch, "select.call")) <= 1, "more than one call in a step"
                if kinds(events, "scene.finished", "scene.failed"):
                    break
                runner.loop.step_task()
        else:
            assert runner.join(30), "the scene did not finish"
            events = runner.stream.read()
    finally:
        assert runner.stop(), "the traced loop did not stop"
    assert kinds(events, "scene.finished"), kinds(events, "scene.failed")
    returns = kinds(events, "select.returned")
    story = [
        "timeout" if r["timed_out"] else "r" if r["readable"] else "w" if r["writable"] else "x"
        for r in returns
    ]
    assert story == ["w", "timeout", "timeout", "r"]
    for timed_out in returns[1:3]:
        assert timed_out["waited"] == pytest.approx(0.5, abs=0.05)
    log = [e["text"].rstrip("\n") for e in kinds(events, "output") if e.get("thread")]
    assert log == NOTES_LOG
    assert {e["thread"] for e in kinds(events, "output") if e.get("thread")} == {"client#1 thread"}
