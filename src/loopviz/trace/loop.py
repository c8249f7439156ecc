"""The traced event loop. The ONLY module that touches private asyncio internals.

``_run_once`` (one iteration: the step gate's checkpoint), ``_ready`` and ``_scheduled`` (queue and
timer counts), ``_ssock`` (the self-pipe, hidden from users) and ``_write_to_self`` (waking a
sleeping ``select`` when the clock or the gate changes) are used here and nowhere else.
Everything else is the stock ``asyncio.SelectorEventLoop``: tracing only observes.
"""

from __future__ import annotations

import asyncio
import asyncio.tasks
import logging
import sys
import threading
from types import CoroutineType
from typing import Any

from loopviz.trace.buffer import DEFAULT_CAPACITY
from loopviz.trace.clock import DilatedClock, check_speed
from loopviz.trace.core import speedups
from loopviz.trace.describe import is_user_code, user_site
from loopviz.trace.gate import StepGate
from loopviz.trace.proxy import PROXY_TYPES, PyTracedCoroutine, TracedCoroutine
from loopviz.trace.records import SPAWN
from loopviz.trace.selector import TracingSelector
from loopviz.trace.tracer import DEFAULT_STALL_THRESHOLD, StallWatchdog, Tracer, stall_limit

log = logging.getLogger("loopviz.trace")

#: Longest ready queue whose tasks ``before_io_wait`` names (see ``_ready_tasks``).
READY_TASKS_LIMIT = 64


class TracedEventLoop(asyncio.SelectorEventLoop):
    """A stock selector loop that reports what it does and runs on a dilated, steppable clock."""

    def __init__(
        self,
        *,
        speed: float = 1.0,
        paused: bool = False,
        capacity: int = DEFAULT_CAPACITY,
        stall_threshold: float = DEFAULT_STALL_THRESHOLD,
        virtual_time: bool = False,
        pure_python: bool = False,
    ) -> None:
        """``virtual_time=True`` makes timers fire at once, in order, with the clock jumping
        to each deadline (a simulation: tests and fast replays); real I/O is still waited for.
        ``pure_python=True`` steps tasks through the Python proxy even when the C one is built
        (tests compare the two)."""
        self._proxy_type = PyTracedCoroutine if pure_python else TracedCoroutine
        self.clock = DilatedClock(speed, virtual=virtual_time)
        self.tracer = Tracer(self.clock, capacity=capacity, stall_threshold=stall_threshold)
        self._tracing_selector = TracingSelector(self.tracer, self.clock)
        super().__init__(self._tracing_selector)
        self.gate = StepGate(self.clock, self._wake)
        self.tracer.gate = self.gate
        self.tracer.cancel_pending = _cancel_pending
        self._tracing_selector.attach(
            self.gate,
            counts=self._counts,
            ready_tasks=self._ready_tasks,
            live_tasks=self._live_tasks,
            due_timers=self._due_timers,
            internal_fds=frozenset({self._ssock.fileno()}),
        )
        self._watchdog: StallWatchdog | None = None
        if virtual_time:
            self._tracing_selector.virtual_time = True
        if paused:
            self.pause()
        else:
            self._clock_event()  # the stream starts by saying the speed it runs at

    # -- the clock ---------------------------------------------------------------------------------

    def time(self) -> float:
        return self.clock.now()

    # -- private internals, in one place ----------------------------------------------------------

    def _run_once(self) -> None:
        if self.gate.armed:
            self.gate.at_iteration_start()
        super()._run_once()

    def _counts(self) -> tuple[int, int]:
        return len(self._ready), len(self._scheduled)

    def _live_tasks(self) -> tuple[int, ...]:
        """Ids of every traced task not finished yet (sent after lost events, to re-sync)."""
        return tuple(
            task_id
            for task in asyncio.all_tasks(self)
            if (task_id := getattr(task.get_coro(), "task_id", None)) is not None
        )

    def _ready_tasks(self) -> tuple[int, ...] | None:
        """Ids of the tasks whose step or wake-up is in the ready queue: they run next.

        Read only while the queue is short (a teaching scene), so a loop with thousands of
        ready callbacks pays nothing; None then means "not looked at"."""
        ready = self._ready
        if len(ready) > READY_TASKS_LIMIT:
            return None
        ids = []
        for handle in ready:
            owner = getattr(handle._callback, "__self__", None)
            if isinstance(owner, asyncio.Task):
                task_id = getattr(owner.get_coro(), "task_id", None)
                if task_id is not None:
                    ids.append(task_id)
        return tuple(ids)

    def _due_timers(self, now: float) -> int:
        """How many live timers fire in this iteration: a walk of the heap's due top only."""
        heap = self._scheduled
        end = now + self._clock_resolution
        due = 0
        stack = [0]
        size = len(heap)
        while stack:
            i = stack.pop()
            if i >= size:
                continue
            handle = heap[i]
            if handle._when >= end:
                continue
            if not handle._cancelled:
                due += 1
            stack.append(2 * i + 1)
            stack.append(2 * i + 2)
        return due

    def _wake(self) -> None:
        if not self.is_closed():
            self._write_to_self()

    # -- tasks ----------------------------------------------------------------------------------

    def create_task(
        self, coro: Any, *, name: str | None = None, context: Any = None, **kwargs: Any
    ):
        kind = type(coro)
        if kind is CoroutineType:
            coro_code = code = coro.cr_code
            # The proxy describes a suspension inline when the coroutine is the user's own.
            if not is_user_code(code):
                code = None
        elif kind in PROXY_TYPES or not asyncio.iscoroutine(coro):
            return super().create_task(coro, name=name, context=context, **kwargs)
        else:  # a generator-based coroutine
            coro_code, code = getattr(coro, "gi_code", None), None
        caller = sys._getframe(1)
        if name is None:
            name = _name_given_to_caller(caller)
        tracer = self.tracer
        task_id = tracer.new_task_id()
        task = super().create_task(
            self._proxy_type(coro, tracer, task_id, code), name=name, context=context, **kwargs
        )
        try:
            site_code, site_lasti = user_site(caller)
            tracer.record(
                SPAWN, task_id, tracer.current, task.get_name(), coro_code, site_code, site_lasti
            )
        except Exception:  # pragma: no cover - tracing must never break the program
            log.exception("loopviz: recording a task spawn failed")
        return task

    # -- running --------------------------------------------------------------------------------

    def run_forever(self) -> None:
        self.tracer.loop_thread_id = threading.get_ident()
        if self._watchdog is None and self.tracer.stall_threshold > 0:
            self._watchdog = StallWatchdog(self.tracer)
            self._watchdog.start()
        try:
            super().run_forever()
        finally:
            self.tracer.flush_output()

    def close(self) -> None:
        self.gate.close()
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog.join(timeout=1)
            self._watchdog = None
        super().close()

    # -- control, callable from any thread -----------------------------------------------------

    @property
    def speed(self) -> float:
        return self.clock.speed

    @property
    def paused(self) -> bool:
        return self.gate.paused

    def set_speed(self, speed: float) -> None:
        """Run the loop clock at ``speed`` times wall speed (0.05 to 20)."""
        self.clock.set_speed(check_speed(speed))
        self.tracer.stall_limit = stall_limit(self.tracer.stall_threshold, self.clock.speed)
        self._wake()  # a sleeping select recomputes its wall timeout at the new speed
        self._clock_event()

    def pause(self) -> None:
        self.gate.pause()
        self.tracer.special = True  # task steps must stop at the gate: off the fast path
        self._clock_event()

    def resume(self) -> None:
        self.gate.resume()
        self._clock_event()

    def step(self) -> None:
        """Run exactly one loop iteration, then stay paused."""
        self.gate.step()
        self.tracer.special = True  # task steps must stop at the gate: off the fast path
        self._clock_event()

    def step_task(self) -> None:
        """Run until the next task step ends, then stay paused."""
        self.gate.step_task()
        self.tracer.special = True  # task steps must stop at the gate: off the fast path
        self._clock_event()

    def label_fd(self, fileobj: Any, label: str) -> None:
        """Give an fd (or socket) a human name in the events: ``client#1``, ``server listen``."""
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        self.tracer.label_fd(fd, label)

    def emit(self, kind: str, **fields: Any) -> None:
        """Put a scene's domain event on the stream. Safe from any thread."""
        self.tracer.emit(kind, fields)

    def _clock_event(self) -> None:
        self.tracer.clock_changed(self.clock.speed, self.gate.paused, self.gate.stepping)


def _cancel_pending(task: asyncio.Task[Any]) -> bool:
    """A cancel() that arrived while the task ran its last step: asyncio ends it cancelled."""
    return bool(getattr(task, "_must_cancel", False))


if speedups is not None:
    speedups.set_cancel_pending(_cancel_pending)


# On 3.11, asyncio.create_task() and TaskGroup.create_task() name the task only after
# loop.create_task() returns; read the name they were given so task_spawned carries it.
_NAMING_CALLERS = frozenset(
    {asyncio.tasks.create_task.__code__, asyncio.TaskGroup.create_task.__code__}
)


def _name_given_to_caller(frame: Any) -> str | None:
    if frame is None or frame.f_code not in _NAMING_CALLERS:
        return None
    name = frame.f_locals.get("name")
    return str(name) if name is not None else None


def new_event_loop(**options: Any) -> TracedEventLoop:
    """A traced loop; use it wherever a stock loop goes (``asyncio.Runner(loop_factory=...)``)."""
    return TracedEventLoop(**options)
