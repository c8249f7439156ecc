"""The select panel's state: which fds the loop watches, and what each ``select`` call returned.

asyncio registers an fd for one operation and removes it after (``sock_recv`` adds a reader, then
drops it), so an fd's readiness counts and history outlive its registration: the panel can show
that ``client#1`` was ready 3 times even while nobody watches it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from loopviz import events as E
from loopviz.events import Event
from loopviz.models.loop_state import loop_time

#: Per-fd readiness entries kept, and select calls kept in ``ready_history``.
DEFAULT_HISTORY = 32


@dataclass
class FdInfo:
    """One fd the loop has watched or labelled."""

    fd: int
    label: str
    #: ``r``, ``w`` or ``rw`` while the selector watches it; None when it does not.
    interest: str | None = None
    ready_count: int = 0
    last_ready: float | None = None
    last_ready_events: str | None = None
    #: (loop time, ``r``/``w``/``rw``) of its latest readiness, oldest first.
    history: deque[tuple[float, str]] = field(default_factory=deque)

    @property
    def watched(self) -> bool:
        return self.interest is not None


@dataclass
class SelectCall:
    """One ``select`` call: what went in, and (once it returned) what came out."""

    iteration: int
    started: float
    timeout: float | None
    #: (fd, interest) of every fd it watched.
    watched: tuple[tuple[int, str], ...] = ()
    #: Callbacks already queued: a select with work queued only polls (timeout 0).
    queued: int = 0
    timers: int = 0
    returned: float | None = None
    ready_fds: tuple[tuple[int, str], ...] = ()
    #: Loop seconds and wall seconds it slept.
    waited: float | None = None
    waited_wall: float | None = None
    timers_due: int = 0

    @property
    def in_progress(self) -> bool:
        return self.returned is None

    @property
    def slept(self) -> float | None:
        """Loop seconds from the call to its return (a virtual clock jumps instead of waiting)."""
        return None if self.returned is None else round(self.returned - self.started, 6)


@dataclass
class SelectorState:
    """Registered fds with labels and interest, the last select call, readiness history, counts."""

    history: int = DEFAULT_HISTORY
    fds: dict[int, FdInfo] = field(default_factory=dict)
    last_select: SelectCall | None = None
    selects: int = 0
    #: Fd readiness reports over all selects (an fd ready in two selects counts twice).
    ready_events: int = 0
    #: (loop time, how many fds were ready) per returned select, oldest first.
    #: Earlier sockets whose fd number was reused, newest last (bounded).
    retired: deque[FdInfo] = field(default_factory=lambda: deque(maxlen=8))
    ready_history: deque[tuple[float, int]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.ready_history = deque(self.ready_history, maxlen=self.history)

    def apply(self, event: Event) -> None:
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event, loop_time(event))

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    # -- reading -----------------------------------------------------------------------------

    @property
    def watched(self) -> list[FdInfo]:
        """The fds the selector watches now, by fd number."""
        return sorted((info for info in self.fds.values() if info.watched), key=lambda i: i.fd)

    def label(self, fd: int) -> str:
        info = self.fds.get(fd)
        return info.label if info is not None else f"fd {fd}"

    def ready_count(self, fd: int) -> int:
        info = self.fds.get(fd)
        return info.ready_count if info is not None else 0

    # -- handlers ----------------------------------------------------------------------------

    def _fd(self, fd: int, label: str | None = None) -> FdInfo:
        info = self.fds.get(fd)
        if info is None:
            info = FdInfo(fd, label or f"fd {fd}", history=deque(maxlen=self.history))
            self.fds[fd] = info
        elif label:
            info.label = label
        return info

    def _fd_label(self, event: Event, t: float) -> None:
        """A label names a new socket: an fd number the kernel reused starts a fresh history,
        so client#3 never shows client#2's readiness."""
        fd = event["fd"]
        old = self.fds.get(fd)
        label = event.get("label") or f"fd {fd}"
        if old is None or old.label != label:
            if old is not None and old.ready_count:
                self.retired.append(old)  # its socket is gone; its readiness is still history
            self.fds[fd] = FdInfo(
                fd,
                label,
                interest=old.interest if old else None,
                history=deque(maxlen=self.history),
            )

    def _fd_watch(self, event: Event, t: float) -> None:
        self._fd(event["fd"], event.get("label")).interest = event.get("events") or None

    def _fd_unwatch(self, event: Event, t: float) -> None:
        self._fd(event["fd"], event.get("label")).interest = None

    def _before_io_wait(self, event: Event, t: float) -> None:
        listed = event.get("fds") or ()
        watched = tuple((entry["fd"], entry.get("events", "")) for entry in listed)
        # The event lists every watched fd: it also repairs a map that missed fd_watch events.
        for entry in listed:
            self._fd(entry["fd"], entry.get("label")).interest = entry.get("events") or None
        now_watched = {fd for fd, _ in watched}
        for info in self.fds.values():
            if info.fd not in now_watched:
                info.interest = None
        self.selects += 1
        self.last_select = SelectCall(
            iteration=event.get("iteration", 0),
            started=t,
            timeout=event.get("timeout"),
            watched=watched,
            queued=event.get("ready", 0),
            timers=event.get("timers", 0),
        )

    def _after_io_wait(self, event: Event, t: float) -> None:
        call = self.last_select
        iteration = event.get("iteration", 0)
        if call is None or not call.in_progress or call.iteration != iteration:
            self.selects += 1  # its before_io_wait is not in the stream
            call = self.last_select = SelectCall(iteration=iteration, started=t, timeout=None)
        ready = tuple(
            (entry["fd"], entry.get("events", "")) for entry in event.get("ready_fds") or ()
        )
        call.returned = t
        call.ready_fds = ready
        call.waited = event.get("waited")
        call.waited_wall = event.get("waited_wall")
        call.timers_due = event.get("timers_due", 0)
        for entry, (fd, events) in zip(event.get("ready_fds") or (), ready, strict=True):
            info = self._fd(fd, entry.get("label"))
            info.ready_count += 1
            info.last_ready = t
            info.last_ready_events = events
            info.history.append((t, events))
        self.ready_events += len(ready)
        self.ready_history.append((t, len(ready)))


_HANDLERS: dict[str, Callable[[SelectorState, Event, float], None]] = {
    E.FD_LABEL: SelectorState._fd_label,
    E.FD_WATCH: SelectorState._fd_watch,
    E.FD_UNWATCH: SelectorState._fd_unwatch,
    E.BEFORE_IO_WAIT: SelectorState._before_io_wait,
    E.AFTER_IO_WAIT: SelectorState._after_io_wait,
}
