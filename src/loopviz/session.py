"""A live session: scenes running on a traced loop, folded into models a view can read.

No Textual here: the dashboard calls ``pump()`` on a timer (about 30 Hz) and renders the models;
tests and benchmarks drive the same object headless. Events are applied in batches, never one
message per event.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from loopviz.models.queue_stats import QueueStats
from loopviz.models.replay import Models
from loopviz.runner import SceneRunner, SceneSpec
from loopviz.trace import MAX_SPEED, MIN_SPEED, Event

#: The speeds ``faster``/``slower`` step through.
SPEEDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
#: Most events folded per pump, so one frame never stalls the UI; the rest wait for the next.
PUMP_LIMIT = 20_000
#: A task step with no event for this long (wall seconds) is shown as freezing the loop.
FROZEN_AFTER = 0.15


@dataclass(frozen=True)
class Freeze:
    """A task step holding the loop thread right now: for how long (loop seconds, as every
    time the class sees; and wall seconds), which task."""

    seconds: float = 0.0
    task_id: int | None = None
    task: str | None = None
    wall: float = 0.0

    def __bool__(self) -> bool:
        return self.seconds > 0


@dataclass(frozen=True, slots=True)
class OutputLine:
    t: float
    task: str | None
    text: str


@dataclass
class SceneProblem:
    scene: str
    error: str


#: Calls of the hand-written select loop kept for the Select panel's history.
RAW_SELECTS_KEPT = 50


@dataclass
class RawSelect:
    """One ``select.select`` call of the sockets scene's thread, and its return once it came."""

    call: Event
    returned: Event | None = None


@dataclass
class SessionModels:
    """Everything a view shows, rebuilt from events only."""

    core: Models = field(default_factory=Models)
    queue: QueueStats = field(default_factory=QueueStats)
    output: deque[OutputLine] = field(default_factory=lambda: deque(maxlen=500))
    problems: list[SceneProblem] = field(default_factory=list)
    #: Each scene variant's latest "finished in" time (loop seconds), in the order they first
    #: finished: pinned over the output, so a result never scrolls away (compare's 6.5 vs 13 s).
    results: dict[str, float] = field(default_factory=dict)
    #: The sockets scene's hand-written select loop (in a thread): its calls, newest last.
    raw_selects: deque[RawSelect] = field(default_factory=lambda: deque(maxlen=RAW_SELECTS_KEPT))

    def apply(self, event: Event) -> None:
        self.core.apply(event)
        kind = event.kind
        if kind.startswith(("queue.", "consumer.")):
            self.queue.apply(event)
        elif kind == "output":
            who = event.get("name") or event.get("thread")
            self.output.append(OutputLine(event.t, who, event["text"]))
        elif kind == "scene.failed":
            self.problems.append(SceneProblem(event["scene"], event["error"]))
        elif kind == "scene.finished":
            variant = event.get("variant")
            took = event.get("took")
            what = f"{event['scene']} {variant}" if variant else str(event["scene"])
            if isinstance(took, int | float):
                self.results[what] = took
                what += f" finished in {took:.2f} s of loop time"
            self.output.append(OutputLine(event.t, "loopviz", what))
        elif kind == "select.call":
            self.raw_selects.append(RawSelect(event))
        elif kind == "select.returned":
            for call in reversed(self.raw_selects):
                if (call.call["round"], call.call["call"]) == (event["round"], event["call"]):
                    call.returned = event
                    break


class Session:
    """Owns the runner and the models; every method is safe to call from the UI thread."""

    def __init__(
        self,
        specs: list[SceneSpec],
        *,
        speed: float = 1.0,
        paused: bool = False,
        virtual_time: bool = False,
    ) -> None:
        self.specs = specs
        self._virtual_time = virtual_time
        self._speed = speed
        self.models = SessionModels()
        self.events_seen = 0
        self.version = 0  # bumped whenever a pump applied events
        self.runner = self._new_runner(paused)

    def _new_runner(self, paused: bool) -> SceneRunner:
        return SceneRunner(
            self.specs, speed=self._speed, paused=paused, virtual_time=self._virtual_time
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.runner.start()

    def stop(self, timeout: float = 5.0) -> bool:
        return self.runner.stop(timeout)

    def restart(self) -> None:
        """Stop the scenes, forget everything shown, and start them again with the same speed."""
        paused = self.paused
        self.runner.stop()
        self.models = SessionModels()
        self.events_seen = 0
        self.version += 1
        self.runner = self._new_runner(paused)
        self.runner.start()

    # -- events --------------------------------------------------------------------------------

    def pump(self, limit: int = PUMP_LIMIT) -> int:
        """Fold whatever the loop recorded since the last pump into the models."""
        batch = self.runner.stream.read(limit)
        if not batch:
            return 0
        apply = self.models.apply
        for event in batch:
            apply(event)
        self.events_seen += len(batch)
        self.version += 1
        return len(batch)

    def freeze(self) -> Freeze:
        """The task step holding the loop thread right now, if one has held it for a while.

        A task step is recorded when it ends, so while a step blocks the loop thread
        (``time.sleep`` in the blocking demo) no event says so yet: the live tracer does. Its
        ``current`` / ``step_started`` are plain attributes the loop thread sets when a step
        begins and clears when it ends; reading them from another thread is safe. A paused loop
        waits at its gate between steps, so it is frozen only while a step runs on.
        """
        tracer = self.runner.loop.tracer
        task_id = tracer.current
        started = tracer.step_started
        if not started:
            return Freeze()
        stuck = time.monotonic() - started
        if stuck < FROZEN_AFTER:
            return Freeze()
        tasks = self.models.core.tasks
        info = tasks.tasks.get(task_id) if task_id is not None else None
        name = info.name if info is not None else (None if task_id is None else f"task {task_id}")
        # The clock runs at ``speed`` while a step runs, stepped or not (see StepGate).
        return Freeze(stuck * self.speed, task_id, name, wall=stuck)

    # -- control -------------------------------------------------------------------------------

    @property
    def loop(self):  # type: ignore[no-untyped-def]
        return self.runner.loop

    @property
    def speed(self) -> float:
        return self.runner.loop.speed

    @property
    def paused(self) -> bool:
        return self.runner.loop.paused

    def toggle_pause(self) -> bool:
        """Pause or resume; returns True if now paused."""
        if self.paused:
            self.runner.loop.resume()
            return False
        self.runner.loop.pause()
        return True

    def step(self) -> None:
        self.runner.loop.step()

    def step_task(self) -> None:
        self.runner.loop.step_task()

    def set_speed(self, speed: float) -> float:
        speed = min(MAX_SPEED, max(MIN_SPEED, speed))
        self._speed = speed
        self.runner.loop.set_speed(speed)
        return speed

    def faster(self) -> float:
        return self.set_speed(next((s for s in SPEEDS if s > self.speed + 1e-9), MAX_SPEED))

    def slower(self) -> float:
        return self.set_speed(
            next((s for s in reversed(SPEEDS) if s < self.speed - 1e-9), MIN_SPEED)
        )

    def has_scene(self, name: str) -> bool:
        return name in self.runner.scenes

    def act(self, scene: str, action: str) -> None:
        self.runner.act(scene, action)
