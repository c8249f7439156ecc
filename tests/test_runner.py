"""The scene runner: failures are reported, actions are checked, stopping is prompt."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import pytest

from loopviz import scenes
from loopviz.runner import SceneRunner, SceneSpec, ScheduledAction
from loopviz.scenes import Scene, SceneError


class BoomScene(Scene):
    """Fails after one step, to show that a failing scene does not take the others down."""

    name = "boom"
    title = "fails on purpose"
    actions: ClassVar[tuple[str, ...]] = ("poke",)

    async def run(self) -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("the scene broke")

    def act(self, action: str) -> None:
        self.emit("boom.poked", action=action)


@pytest.fixture
def boom_scene(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(scenes.SCENE_PATHS, "boom", "test_runner:BoomScene")


def run_to_end(runner: SceneRunner, timeout: float = 20) -> list:
    runner.start()
    events = []
    deadline = time.monotonic() + timeout
    while runner.running and time.monotonic() < deadline:
        time.sleep(0.02)
        events += runner.stream.read()
    assert runner.stop(), "the runner did not stop"
    return events + runner.stream.read()


def test_a_failing_scene_is_reported_and_the_others_finish(boom_scene: None) -> None:
    runner = SceneRunner([SceneSpec("boom"), SceneSpec("tasks")], virtual_time=True)
    events = run_to_end(runner)
    failed = [e for e in events if e.kind == "scene.failed"]
    assert [(e["scene"], e["error"]) for e in failed] == [("boom", "RuntimeError: the scene broke")]
    assert runner.failures == {"boom": "RuntimeError: the scene broke"}
    assert any(e.kind == "scene.finished" and e["scene"] == "tasks" for e in events)


def test_scheduled_actions_run_at_their_loop_time(boom_scene: None) -> None:
    runner = SceneRunner(
        [SceneSpec("boom"), SceneSpec("tasks")],
        virtual_time=True,
        schedule=[ScheduledAction(0.005, "boom", "poke")],
    )
    events = run_to_end(runner)
    pokes = [e for e in events if e.kind == "boom.poked"]
    assert [(e["action"], e.t) for e in pokes] == [("poke", pytest.approx(0.005, abs=1e-6))]


def test_unknown_actions_are_refused_before_anything_runs() -> None:
    with pytest.raises(SceneError, match="no action 'poke'"):
        SceneRunner([SceneSpec("tasks")], schedule=[ScheduledAction(1, "tasks", "poke")])
    with pytest.raises(SceneError, match="not running"):
        SceneRunner([SceneSpec("tasks")], schedule=[ScheduledAction(1, "queue", "burst")])


def test_queue_actions_scheduled_headless() -> None:
    runner = SceneRunner(
        [SceneSpec("queue")],
        virtual_time=True,
        duration=8.0,
        schedule=[
            ScheduledAction(2.0, "queue", "consumer-down"),
            ScheduledAction(5.0, "queue", "consumer-up"),
        ],
    )
    events = run_to_end(runner)
    downs = [e.t for e in events if e.kind == "consumer.down"]
    ups = [e.t for e in events if e.kind == "consumer.up"]
    assert downs == [pytest.approx(2.0, abs=1e-3)]
    assert ups == [pytest.approx(5.0, abs=1e-3)]


def test_repeat_runs_a_scene_again() -> None:
    runner = SceneRunner([SceneSpec("tasks", repeat=1.0)], virtual_time=True, duration=20.0)
    events = run_to_end(runner)
    finished = [e.t for e in events if e.kind == "scene.finished"]
    assert len(finished) == 2  # 6.5 s, then 1 s pause, 6.5 s, then 1 s: the third is cut at 20 s
    assert finished[1] - finished[0] == pytest.approx(7.5, abs=1e-3)


def test_stopping_a_blocked_loop_is_prompt() -> None:
    """At 0.05x the blocking client would hold the loop for 30 s in recv; stop hangs up."""
    runner = SceneRunner([SceneSpec("sockets", "blocking")], speed=0.05)
    runner.start()
    time.sleep(1.0)
    started = time.monotonic()
    assert runner.stop(timeout=5)
    assert time.monotonic() - started < 3
    assert runner.loop.is_closed()


def test_stopping_a_paused_loop_releases_it() -> None:
    runner = SceneRunner([SceneSpec("tasks")], paused=True)
    runner.start()
    time.sleep(0.2)
    assert runner.loop.gate.waiting_at is not None
    assert runner.stop(timeout=5)
