"""A session: a source's events folded into models a view can read, and its controls.

No Textual here: the dashboard calls ``pump()`` on a timer (about 30 Hz) and renders the models;
tests and benchmarks drive the same object headless. Events are applied in batches, never one
message per event. The program runs elsewhere (a child process, or a thread for tests): this
only reads its events and sends it commands.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from loopviz.events import Event
from loopviz.models.queue_stats import QueueStats
from loopviz.models.replay import Models
from loopviz.output_file import OutputFile, OutputFileError
from loopviz.sources.base import Source, Status
from loopviz.speed import MAX_SPEED, MIN_SPEED
from loopviz.wire.commands import ACT, PAUSE, RESUME, SPEED, STEP, STEP_TASK
from loopviz.wire.format import encode

#: The speeds ``faster``/``slower`` step through.
SPEEDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
#: Most events folded per pump, so one frame never stalls the UI; the rest wait for the next.
PUMP_LIMIT = 20_000


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
    """The models of one source, and the controls a view has over it. Safe to call from the
    UI thread; nothing here touches a loop: commands go through the source."""

    def __init__(self, source: Source, *, speed: float = 1.0, paused: bool = False) -> None:
        self.source = source
        self._speed = speed
        self._paused = paused
        self.models = SessionModels()
        self.events_seen = 0
        self.version = 0  # bumped whenever a pump applied events
        self._recording: OutputFile | None = None
        self._recording_problem: str | None = None
        self._header_written = False
        self.events_recorded = 0

    # -- recording -----------------------------------------------------------------------------

    def record_to(self, output: OutputFile | None) -> None:
        """Write every event read from now on to ``output`` (``--record``): the source's
        header first, then each event as the stream had it."""
        self._recording = output

    def finish_recording(self) -> str | None:
        """Put the recording in place; the problem, in one line, if it could not be written."""
        output = self._recording
        self._recording = None
        if output is not None:
            try:
                self._record_batch([])
                output.close()
            except OutputFileError as exc:
                output.discard()
                self._recording_problem = str(exc)
        return self._recording_problem

    def _record_batch(self, batch: list[Event]) -> None:
        output = self._recording
        if output is None:
            return
        try:
            if not self._header_written:
                header = getattr(self.source, "header", None)
                if header is None and not batch:
                    return
                self._header_written = True
                if header is not None:
                    output.write(encode(header) + "\n")
            for event in batch:
                output.write(encode(event.to_dict()) + "\n")
            self.events_recorded += len(batch)
        except OutputFileError as exc:  # the dashboard goes on; the problem is told at the end
            output.discard()
            self._recording = None
            self._recording_problem = str(exc)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.source.start()

    def stop(self, timeout: float = 5.0) -> bool:
        return self.source.stop(timeout)

    def status(self) -> Status:
        return self.source.status()

    def restart(self) -> None:
        """Stop the program, forget everything shown, and start it again at the same speed."""
        self.source.restart()
        self.models = SessionModels()
        self.events_seen = 0
        self.version += 1

    # -- events --------------------------------------------------------------------------------

    def pump(self, limit: int = PUMP_LIMIT) -> int:
        """Fold whatever the source has read since the last pump into the models."""
        batch = self.source.read(limit)
        if not batch:
            return 0
        if self._recording is not None:
            self._record_batch(batch)
        loop = self.models.core.loop
        clock_events = loop.clock_events
        apply = self.models.apply
        for event in batch:
            apply(event)
        if loop.clock_events != clock_events:  # the program says how it runs now
            self._paused, self._speed = loop.paused, loop.speed
        self.events_seen += len(batch)
        self.version += 1
        return len(batch)

    def ready(self) -> bool:
        """Whether the source has events waiting (see ``LoopvizApp.hurry``)."""
        return self.source.ready()

    def freeze(self) -> Freeze:
        """The task step holding the loop thread right now, if one has held it for a while
        (as the latest ``step_running`` event says; the program's side looks)."""
        busy = self.models.core.loop.busy
        if busy is None or self.source.status().over:
            return Freeze()
        return Freeze(busy.seconds, busy.task, busy.name, wall=busy.wall)

    # -- control -------------------------------------------------------------------------------

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stepping(self) -> bool:
        return self.models.core.loop.stepping

    @property
    def held_at(self) -> str | None:
        return self.models.core.loop.held_at

    def toggle_pause(self) -> bool:
        """Pause or resume; returns True if now paused."""
        self._paused = not self._paused
        self.source.send(PAUSE if self._paused else RESUME)
        return self._paused

    def step(self) -> None:
        self._paused = True
        self.source.send(STEP)

    def step_task(self) -> None:
        self._paused = True
        self.source.send(STEP_TASK)

    def set_speed(self, speed: float) -> float:
        speed = min(MAX_SPEED, max(MIN_SPEED, speed))
        self._speed = speed
        self.source.send(SPEED, value=speed)
        return speed

    def faster(self) -> float:
        return self.set_speed(next((s for s in SPEEDS if s > self.speed + 1e-9), MAX_SPEED))

    def slower(self) -> float:
        return self.set_speed(
            next((s for s in reversed(SPEEDS) if s < self.speed - 1e-9), MIN_SPEED)
        )

    def has_scene(self, name: str) -> bool:
        return name in self.source.scenes

    def act(self, scene: str, action: str) -> None:
        """A scene action; CommandError (one line) if the scene has no such action."""
        self.source.send(ACT, scene=scene, action=action)
