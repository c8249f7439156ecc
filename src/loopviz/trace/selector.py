"""The loop's selector: each ``select(timeout)`` call is one loop iteration's I/O wait.

It reports what the loop watches (register/modify/unregister), every wait (timeout in loop seconds,
ready-queue and timer counts) and what the kernel said was ready. It also turns the loop's virtual
timeout into wall time at the current speed and, while stepping, jumps the clock to the next timer
instead of sleeping.

Watching an fd is recorded by ``_speedups.PollWatch`` standing in for the epoll/poll object when
the C module is built (an fd change then costs one C call more than on the stock loop), else by
``PyWatchingSelector``'s overrides.
"""

from __future__ import annotations

import selectors
import time
from collections.abc import Callable
from typing import Any

from loopviz.trace.clock import DilatedClock
from loopviz.trace.core import speedups
from loopviz.trace.gate import SETTLE_LIMIT, StepGate
from loopviz.trace.records import AFTER_IO, BEFORE_IO, FD_UNWATCH, FD_WATCH, HELD
from loopviz.trace.tracer import Tracer

_monotonic = time.monotonic
#: Wall seconds a jumping clock (stepping, virtual time) still waits for I/O in flight.
STEP_GRACE = 0.02


def _py_ready_fds(
    events: list[tuple[selectors.SelectorKey, int]], internal: frozenset[int]
) -> tuple[tuple[int, int], ...]:
    return tuple((key.fd, mask) for key, mask in events if key.fd not in internal)


#: ``((fd, mask), ...)`` of a select() result without the loop's own fds (C when built).
_ready_fds = _py_ready_fds if speedups is None else speedups.ready_fds

#: Selectors whose kernel object (``_selector``) is called for every change of interest.
_POLL_LIKE: tuple[type, ...] = tuple(
    getattr(selectors, name)
    for name in ("EpollSelector", "PollSelector", "DevpollSelector")
    if hasattr(selectors, name)
)


def tracing_selector(
    tracer: Tracer, clock: DilatedClock, pure_python: bool = False
) -> TracingSelector:
    """The platform's selector, traced: fd changes recorded in C where it can, else in Python."""
    if (
        not pure_python
        and speedups is not None
        and issubclass(selectors.DefaultSelector, _POLL_LIKE)
    ):
        return TracingSelector(tracer, clock)
    return PyWatchingSelector(tracer, clock)


class TracingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The platform's selector, recording every wait, and every fd change through
    ``PollWatch`` (``PyWatchingSelector`` records those in Python).

    A subclass rather than a wrapper: lookups the loop makes all the time (``get_key``) run at
    stock speed.
    """

    _watches_in_c = True

    def __init__(self, tracer: Tracer, clock: DilatedClock):
        super().__init__()
        self._watch: Any = None
        if speedups is not None and isinstance(self, _POLL_LIKE) and type(self)._watches_in_c:
            self._watch = speedups.PollWatch(
                self._selector, tracer, FD_WATCH, FD_UNWATCH, self._EVENT_READ, self._EVENT_WRITE
            )
            self._selector = self._watch
        #: The loop's tracer, clock and gate live here, not on the loop (see TracedEventLoop).
        self.tracer = tracer
        self._record = tracer.record
        self.clock = clock
        self.gate: StepGate | None = None
        self._counts: Callable[[], tuple[int, int]] = lambda: (0, 0)
        self._ready_tasks: Callable[[], tuple[int, ...] | None] = lambda: None
        self._live_tasks: Callable[[], tuple[int, ...]] = lambda: ()
        self._due: Callable[[float], int] = lambda end: 0
        self._next_timer: Callable[[], float | None] = lambda: None
        self._internal: frozenset[int] = frozenset()
        self._attached = False
        self.iteration = 0
        #: Simulated time: never sleep for a timer, jump the clock to it (tests, fast replays).
        self.virtual_time = False

    def attach(
        self,
        gate: StepGate,
        counts: Callable[[], tuple[int, int]],
        ready_tasks: Callable[[], tuple[int, ...] | None],
        live_tasks: Callable[[], tuple[int, ...]],
        due_timers: Callable[[float], int],
        next_timer: Callable[[], float | None],
        internal_fds: frozenset[int],
    ) -> None:
        """Start reporting; fds in ``internal_fds`` (the loop's self-pipe) are never shown."""
        self.gate = gate
        gate.on_hold = self._held
        self._next_timer = next_timer
        self._counts = counts
        self._ready_tasks = ready_tasks
        self._live_tasks = live_tasks
        self._due = due_timers
        self._internal = internal_fds
        self._attached = True
        if self._watch is not None:
            self._watch.internal = internal_fds
            self._watch.recording = True

    def watched(self) -> tuple[tuple[int, int], ...]:
        """``(fd, mask)`` for every fd the user's code has the loop watch."""
        internal = self._internal
        return tuple((fd, key.events) for fd, key in self.get_map().items() if fd not in internal)

    @staticmethod
    def _settle(gate: StepGate, clock: DilatedClock) -> float | None:
        """Wait for the scene threads that follow the loop (the clock stands still meanwhile:
        the wait is loopviz's, not the program's) and return the deadline the jump stops at."""
        frozen = clock.frozen
        if not frozen:
            clock.freeze()
        try:
            return gate.settle_followers(clock.now, SETTLE_LIMIT)
        finally:
            if not frozen:
                clock.unfreeze()

    def _held(self, where: str) -> None:
        """The gate holds the loop: record its queues as they are now, so a paused screen shows
        what will run next, not what was true before the last ``select``."""
        ready_len, timers_len = self._counts()
        self._record(
            HELD,
            where,
            ready_len,
            timers_len,
            self._next_timer(),
            self._ready_tasks() if ready_len else (),
        )

    # -- the wait --------------------------------------------------------------------------------

    def _wait(self, wall: float | None, speed: float) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait ``wall`` seconds for I/O, precisely when the loop runs fast.

        epoll rounds a timeout up to the next millisecond; at 20x that would add up to 20 ms of
        loop time to every timer. Faster than 1x, wait the whole milliseconds in ``select`` and
        the sub-millisecond rest with a short sleep, then poll once more.
        """
        if speed <= 1.0 or not wall or wall <= 0:
            return super().select(wall)
        deadline = _monotonic() + wall
        whole = int(wall * 1000) / 1000
        events = super().select(whole) if whole > 0 else []
        if not events:
            rest = deadline - _monotonic()
            if rest > 0:
                time.sleep(rest)
            events = super().select(0)
        return events

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if not self._attached:
            return super().select(timeout)
        tracer = self.tracer
        clock = self.clock
        gate = self.gate
        self.iteration += 1
        iteration = self.iteration
        ready_len, timers_len = self._counts()
        snapshot = None
        if tracer.resync_requested:
            tracer.resync_requested = False
            snapshot = (self.watched(), self._live_tasks())
        if tracer.pending_output or tracer.loose_output:
            tracer.flush_output()
        started = _monotonic()
        tracer.append(
            (
                BEFORE_IO,
                tracer.next_seq(),
                started,
                iteration,
                timeout,
                ready_len,
                timers_len,
                snapshot,
                self._ready_tasks() if ready_len else (),
            )
        )
        if self.virtual_time or (gate is not None and gate.armed):
            jump = self.virtual_time or (gate is not None and gate.stepping)
            cap = None  # a following scene thread's deadline the jump must stop at
            if jump and timeout != 0 and gate is not None and gate.has_followers:
                cap = self._settle(gate, clock)
            due = clock.now() + timeout if timeout else 0.0
            grace = 0.0
            if jump and timeout != 0 and len(self.get_map()) > len(self._internal):
                # Before jumping over a timer, give I/O already in flight (a reply on its way
                # over loopback) the moment it needs, as the real wait would have.
                wall = clock.wall_seconds(timeout)
                grace = STEP_GRACE if wall is None else min(STEP_GRACE, wall)
            events = super().select(grace)
            # The loop's own wake-up byte (a control change) is no reason to stop the jump.
            if jump and timeout != 0 and all(key.fd in self._internal for key, _ in events):
                if cap is not None and (timeout is None or cap < due):
                    clock.advance(cap - clock.now())  # the thread's timeout is next
                elif timeout is None:
                    if not events:
                        events = super().select(None)  # only I/O can wake us: wait for it
                else:  # stepping: the next timer is due now (the clock ran during the grace)
                    clock.advance(due - clock.now())
        else:
            events = self._wait(clock.wall_seconds(timeout), clock.speed)
        internal = self._internal
        ready = _ready_fds(events, internal) if events else ()
        due = self._due(clock.now()) if timers_len else 0
        tracer.append((AFTER_IO, tracer.next_seq(), _monotonic(), iteration, ready, due, started))
        return events


class PyWatchingSelector(TracingSelector):
    """Records fd changes in Python: without the C module, or on a selector (kqueue, select)
    with no poll object to stand in for."""

    _watches_in_c = False

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = super().register(fileobj, events, data)
        if self._attached and key.fd not in self._internal:
            self._record(FD_WATCH, key.fd, key.events)
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        key = super().unregister(fileobj)
        if self._attached and key.fd not in self._internal:
            self._record(FD_UNWATCH, key.fd)
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        before = self.get_key(fileobj).events
        key = super().modify(fileobj, events, data)
        if self._attached and key.events != before and key.fd not in self._internal:
            self._record(FD_WATCH, key.fd, key.events)
        return key
