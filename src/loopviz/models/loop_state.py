"""The loop bar's state: which iteration, which phase, what is queued, how fast the clock runs.

Everything here comes from events, so a replay shows the same bar as the live run did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from loopviz import events as E
from loopviz.events import Event

RUN_READY = "run callbacks"
WAIT_IN_SELECT = "wait in select"
FIRE_TIMERS = "fire timers"

#: Loop times are rounded as ``Event.to_json`` rounds them, so live and replayed folds are equal.
TIME_DIGITS = 6


def loop_time(event: Event) -> float:
    """The event's loop time as a recorded file holds it (live events carry more digits)."""
    return round(event.t, TIME_DIGITS)


def stall_loop_seconds(wall: float, speed: float, step_span: float | None) -> float:
    """How much loop time a stall took.

    A stall is measured in wall seconds; on the dilated clock it lasts ``wall * speed`` loop
    seconds, which the step's own loop-time span shows directly. The larger of the two wins: the
    span is exact on a real clock, while ``wall * speed`` still holds on a frozen (virtual) clock.
    """
    return max(step_span or 0.0, wall * speed)


@dataclass(frozen=True, slots=True)
class Stall:
    """One step that held the loop: who, for how long, and the call that blocked."""

    t: float
    task: int | None
    name: str | None
    duration: float  # wall seconds, as measured
    loop_duration: float  # loop seconds (see ``stall_loop_seconds``)
    line: str | None
    source: str | None


#: Where the step gate holds a paused loop (the ``at`` of ``loop_held``).
HELD_BEFORE_ITERATION = "iteration"
HELD_AFTER_TASK_STEP = "task step"


@dataclass(frozen=True, slots=True)
class Busy:
    """A task step still holding the loop as of the last ``step_running`` event."""

    task: int | None
    name: str | None
    #: Loop time the step began, and loop time and wall seconds it had held the loop when told.
    since: float
    at: float
    wall: float

    @property
    def seconds(self) -> float:
        return round(max(0.0, self.at - self.since), TIME_DIGITS)


#: Events that say the step that was holding the loop has ended.
_STEP_OVER = frozenset({E.AFTER_TASK_STEP, E.BEFORE_IO_WAIT, E.AFTER_IO_WAIT, E.TASK_EXITED})
#: Events that say the loop has moved on from where the gate held it.
_MOVED_ON = _STEP_OVER | {E.BEFORE_TASK_STEP}


@dataclass
class LoopState:
    """Iteration, phase, ready-queue length, timers, clock speed and health of one traced loop."""

    speed: float = 1.0
    paused: bool = False
    stepping: bool = False
    iteration: int = 0
    phase: str | None = None
    #: Callbacks this iteration runs: before select, what was queued; after it, plus the fds and
    #: timers that just became ready.
    ready: int = 0
    timers: int = 0
    #: Loop time the next timer fires, when known (select sleeps exactly until it).
    next_deadline: float | None = None
    #: The timeout of the select in progress or last returned; None waits for I/O only.
    select_timeout: float | None = None
    dropped: int = 0
    now: float = 0.0
    stalls: int = 0
    last_stall: Stall | None = None
    running_task: int | None = None
    step_started: float | None = None
    #: Steps an eager task's first step runs inside: (task, started), resumed when it ends.
    outer_steps: list[tuple[int, float | None]] = field(default_factory=list)
    #: Loop seconds the last finished step took (a stall event follows its step).
    last_step_span: float | None = None
    #: The step holding the loop right now, while ``step_running`` events say so.
    busy: Busy | None = None
    #: Where the gate holds the paused loop (HELD_BEFORE_ITERATION / HELD_AFTER_TASK_STEP),
    #: or None while it runs or steps.
    held_at: str | None = None
    #: How many ``clock`` events came: a view that keeps what it asked for (paused, speed)
    #: takes the program's word again when this moves.
    clock_events: int = 0

    def apply(self, event: Event) -> None:
        t = loop_time(event)
        if t > self.now:
            self.now = t
        kind = event.kind
        if kind in _MOVED_ON:
            self.held_at = None
            if kind in _STEP_OVER:
                self.busy = None
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event, t)

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    @property
    def waiting_in_select(self) -> bool:
        return self.phase == WAIT_IN_SELECT

    # -- handlers ----------------------------------------------------------------------------

    def _before_io_wait(self, event: Event, t: float) -> None:
        self.iteration = event.get("iteration", self.iteration)
        self.phase = WAIT_IN_SELECT
        self.ready = event.get("ready", 0)
        self.timers = event.get("timers", 0)
        timeout = event.get("timeout")
        self.select_timeout = timeout
        if self.timers == 0:
            self.next_deadline = None
        elif timeout is not None and self.ready == 0:
            # Nothing to run: select sleeps exactly until the earliest timer.
            self.next_deadline = round(t + timeout, TIME_DIGITS)
        elif self.next_deadline is not None and self.next_deadline < t:
            self.next_deadline = None  # passed; a polling select cannot tell the new one

    def _after_io_wait(self, event: Event, t: float) -> None:
        self.iteration = event.get("iteration", self.iteration)
        due = event.get("timers_due", 0)
        self.phase = FIRE_TIMERS if due else RUN_READY
        ready_fds = event.get("ready_fds") or ()
        self.ready += due + sum(len(entry.get("events", "")) for entry in ready_fds)
        self.timers = max(0, self.timers - due)
        if self.timers == 0:
            self.next_deadline = None

    def _loop_held(self, event: Event, t: float) -> None:
        """The gate holds the loop: its queues as they are at this stop."""
        self.held_at = event.get("at")
        self.stepping = False
        self.busy = None
        self.ready = event.get("ready", self.ready)
        self.timers = event.get("timers", self.timers)
        self.next_deadline = event.get("next_timer")

    def _before_task_step(self, event: Event, t: float) -> None:
        self.phase = RUN_READY
        if self.running_task is not None and self.running_task != event.get("task"):
            self.outer_steps.append((self.running_task, self.step_started))
        self.running_task = event.get("task")
        self.step_started = t

    def _after_task_step(self, event: Event, t: float) -> None:
        self.phase = RUN_READY
        self.running_task = None
        if self.step_started is not None:
            self.last_step_span = round(t - self.step_started, TIME_DIGITS)
        self.step_started = None
        if self.outer_steps:
            self.running_task, self.step_started = self.outer_steps.pop()

    def _loop_stalled(self, event: Event, t: float) -> None:
        wall = event.get("duration") or 0.0
        self.stalls += 1
        self.last_stall = Stall(
            t=t,
            task=event.get("task"),
            name=event.get("name"),
            duration=wall,
            loop_duration=round(
                stall_loop_seconds(wall, self.speed, self.last_step_span), TIME_DIGITS
            ),
            line=event.get("line"),
            source=event.get("source"),
        )

    def _clock(self, event: Event, t: float) -> None:
        self.clock_events += 1
        self.speed = event.get("speed", self.speed)
        self.paused = bool(event.get("paused", self.paused))
        self.stepping = bool(event.get("stepping", self.stepping))
        if self.stepping or not self.paused:
            self.held_at = None  # let go: running, or taking a step

    def _step_running(self, event: Event, t: float) -> None:
        self.busy = Busy(
            event.get("task"), event.get("name"), event.get("since", t), t, event.get("wall", 0.0)
        )

    def _events_dropped(self, event: Event, t: float) -> None:
        total = event.get("total")
        self.dropped = total if total is not None else self.dropped + event.get("count", 0)
        self.outer_steps.clear()  # an after_task_step may be among what was lost


_HANDLERS: dict[str, Callable[[LoopState, Event, float], None]] = {
    E.BEFORE_IO_WAIT: LoopState._before_io_wait,
    E.AFTER_IO_WAIT: LoopState._after_io_wait,
    E.BEFORE_TASK_STEP: LoopState._before_task_step,
    E.AFTER_TASK_STEP: LoopState._after_task_step,
    E.LOOP_HELD: LoopState._loop_held,
    E.LOOP_STALLED: LoopState._loop_stalled,
    E.CLOCK: LoopState._clock,
    E.STEP_RUNNING: LoopState._step_running,
    E.EVENTS_DROPPED: LoopState._events_dropped,
}
