"""The lanes under the tasks panel: when each task ran over the last seconds of loop time.

Interleaving (async), one-after-the-other (sync) and a frozen loop (blocking) differ only in where
the run spans fall, so the model keeps spans and leaves drawing to ``cells``: for a window and a
width it says which cells of each lane saw the task run. A step far shorter than a cell (most are)
still marks its cell, or an async run would look idle.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Reversible
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loopviz import events as E
from loopviz.events import Event
from loopviz.models.loop_state import loop_time

#: (start, end) in loop seconds.
Span = tuple[float, float]
SpanT = TypeVar("SpanT", bound=tuple[Any, ...])

DEFAULT_WINDOW = 10.0
#: A safety bound per lane, for a task that steps thousands of times within one window.
DEFAULT_MAX_SPANS = 4096


def cell_edges(t0: float, t1: float, width: int) -> list[float]:
    """The ``width + 1`` boundaries of the cells dividing [t0, t1]; cell i is [edge i, edge i+1).

    The last edge is t1 itself: computed like the others it can round to just below t1.
    """
    return [*(t0 + (t1 - t0) * i / width for i in range(width)), t1]


def mark_cells(spans: Iterable[Span], t0: float, t1: float, width: int) -> list[bool]:
    """Which cells of [t0, t1] each span touched.

    A span marks every cell it overlaps; an instant (start == end) marks the cell holding it; a
    span ending exactly where a cell begins does not mark that cell. The last cell includes t1.
    """
    return [when is not None for when in first_touches(spans, t0, t1, width)]


def first_touches(spans: Iterable[Span], t0: float, t1: float, width: int) -> list[float | None]:
    """For each cell of [t0, t1], the earliest loop time a span touched it (None: none did),
    by the rules ``mark_cells`` states."""
    if width <= 0 or t1 <= t0:
        return [None] * max(width, 0)
    edges = cell_edges(t0, t1, width)
    cells: list[float | None] = [None] * width
    for start, end in spans:
        if start > t1 or end < t0:
            continue
        first = min(max(0, bisect_right(edges, start) - 1), width - 1)
        last = min(bisect_left(edges, end) - 1, width - 1) if end > start else first
        for i in range(first, last + 1):
            when = max(start, edges[i])
            seen = cells[i]
            if seen is None or when < seen:
                cells[i] = when
    return cells


@dataclass
class Lane:
    """One task's row of run spans, oldest first (spans of one task never overlap)."""

    task: int
    name: str
    user: bool = True
    parent: int | None = None
    runs: deque[Span] = field(default_factory=deque)
    #: Start of the step in progress, if the task is running.
    running_since: float | None = None
    finished: bool = False

    def spans(self, since: float, until: float) -> list[Span]:
        """Runs that end at or after ``since``, plus the step in progress as running until
        ``until``; only the window's spans are visited (runs are in time order)."""
        spans = _tail(self.runs, since)
        if self.running_since is not None:
            spans.append((self.running_since, max(until, self.running_since)))
        return spans


@dataclass
class Timeline:
    """Per-task run spans and loop stalls over the last ``window`` loop seconds."""

    window: float = DEFAULT_WINDOW
    max_spans: int = DEFAULT_MAX_SPANS
    lanes: dict[int, Lane] = field(default_factory=dict)
    #: (start, end, task) of every step that stalled the loop, oldest first.
    stalls: deque[tuple[float, float, int | None]] = field(default_factory=deque)
    now: float = 0.0
    running: int | None = None
    #: Lanes whose step an eager task's first step runs inside (they resume when it ends).
    outer: list[int] = field(default_factory=list)
    _pruned_at: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.stalls = deque(self.stalls, maxlen=self.max_spans)

    def apply(self, event: Event) -> None:
        t = loop_time(event)
        if t > self.now:
            self.now = t
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event, t)
        if self.now - self._pruned_at > self.window / 8:
            self.prune()

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    # -- reading -----------------------------------------------------------------------------

    def bounds(self) -> tuple[float, float]:
        """The window ending at the latest event: what a live view shows."""
        return (max(0.0, self.now - self.window), self.now)

    def rows(self, *, machinery: bool = False) -> list[Lane]:
        return [lane for lane in self.lanes.values() if machinery or lane.user]

    def lane_cells(self, task: int, t0: float, t1: float, width: int) -> list[bool]:
        """Cells of [t0, t1] in which ``task`` ran (a step in progress runs until t1)."""
        lane = self.lanes.get(task)
        if lane is None:
            return [False] * width
        return mark_cells(lane.spans(t0, max(t1, self.now)), t0, t1, width)

    def cells(
        self, t0: float, t1: float, width: int, *, machinery: bool = False
    ) -> dict[int, list[bool]]:
        """``lane_cells`` for every lane shown, by task id in lane order."""
        return {
            lane.task: self.lane_cells(lane.task, t0, t1, width)
            for lane in self.rows(machinery=machinery)
        }

    def turns(
        self, t0: float, t1: float, width: int, *, machinery: bool = False
    ) -> dict[int, list[int]]:
        """For every lane shown, per cell of [t0, t1]: 0 where the task did not run; 1 where it
        was the only one to run; and where several ran in the one cell, its place among them
        (2, 3, ... for the second, third) in the order they first ran. The loop runs one task
        at a time: tasks sharing a column took turns, and the places say in which order."""
        until = max(t1, self.now)
        touches = {
            lane.task: first_touches(lane.spans(t0, until), t0, t1, width)
            for lane in self.rows(machinery=machinery)
        }
        turns = {task: [0] * width for task in touches}
        for cell in range(width):
            ran = sorted(
                (when, task) for task, cells in touches.items() if (when := cells[cell]) is not None
            )
            for place, (_, task) in enumerate(ran, start=1):
                turns[task][cell] = place
        return turns

    def stall_cells(self, t0: float, t1: float, width: int) -> list[bool]:
        """Cells of [t0, t1] during which a stalled step held the loop."""
        return mark_cells([(s, e) for s, e, _ in _tail(self.stalls, t0)], t0, t1, width)

    # -- memory ------------------------------------------------------------------------------

    def prune(self) -> None:
        """Forget spans that ended before the window, and lanes of finished tasks left empty."""
        horizon = self.now - self.window
        self._pruned_at = self.now
        for lane in self.lanes.values():
            while lane.runs and lane.runs[0][1] < horizon:
                lane.runs.popleft()
        while self.stalls and self.stalls[0][1] < horizon:
            self.stalls.popleft()
        gone = [task for task, lane in self.lanes.items() if lane.finished and not lane.runs]
        for task in gone:
            del self.lanes[task]

    # -- handlers ----------------------------------------------------------------------------

    def _lane(self, event: Event) -> Lane:
        task = event["task"]
        lane = self.lanes.get(task)
        if lane is None:
            name = event.get("name") or f"task {task}"
            lane = Lane(task, name, runs=deque(maxlen=self.max_spans))
            self.lanes[task] = lane
        return lane

    def _close(self, lane: Lane, t: float) -> None:
        if lane.running_since is not None:
            lane.runs.append((lane.running_since, max(t, lane.running_since)))
            lane.running_since = None
        if self.running == lane.task:
            self.running = None
            if self.outer:  # the step this one ran inside goes on
                outer = self.lanes.get(self.outer.pop())
                if outer is not None:
                    outer.running_since = t
                    self.running = outer.task

    def _task_spawned(self, event: Event, t: float) -> None:
        lane = self._lane(event)
        lane.user = bool(event.get("user", True))
        lane.parent = event.get("parent")

    def _task_renamed(self, event: Event, t: float) -> None:
        self._lane(event).name = event.get("name") or self._lane(event).name

    def _before_task_step(self, event: Event, t: float) -> None:
        lane = self._lane(event)
        if self.running is not None and self.running != lane.task:
            other = self.lanes.get(self.running)
            nested = not lane.runs and lane.running_since is None and lane.parent == self.running
            if other is not None:
                self._close(other, t)  # its after_task_step was lost, or it resumes later
            if nested:  # an eager task's first step: its parent's step goes on after it
                self.outer.append(other.task if other is not None else lane.parent)
        lane.running_since = t
        self.running = lane.task

    def _after_task_step(self, event: Event, t: float) -> None:
        self._close(self._lane(event), t)

    def _task_exited(self, event: Event, t: float) -> None:
        lane = self._lane(event)
        self._close(lane, t)
        lane.finished = True

    def _loop_stalled(self, event: Event, t: float) -> None:
        """The stall is the step that just ended (the event follows its after_task_step)."""
        task = event.get("task")
        lane = self.lanes.get(task) if task is not None else None
        start, end = lane.runs[-1] if lane is not None and lane.runs else (t, t)
        self.stalls.append((start, end, task))


def _tail(spans: Reversible[SpanT], t0: float) -> list[SpanT]:
    """The spans that end at or after t0, oldest first (scanned from the newest end)."""
    tail: list[SpanT] = []
    for span in reversed(spans):
        if span[1] < t0:
            break
        tail.append(span)
    tail.reverse()
    return tail


_HANDLERS: dict[str, Callable[[Timeline, Event, float], None]] = {
    E.TASK_SPAWNED: Timeline._task_spawned,
    E.TASK_RENAMED: Timeline._task_renamed,
    E.BEFORE_TASK_STEP: Timeline._before_task_step,
    E.AFTER_TASK_STEP: Timeline._after_task_step,
    E.TASK_EXITED: Timeline._task_exited,
    E.LOOP_STALLED: Timeline._loop_stalled,
}
