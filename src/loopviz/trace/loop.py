"""The traced event loop. The ONLY module that touches private asyncio internals.

``_run_once`` (one iteration: the step gate's checkpoint), ``_ready`` and ``_scheduled`` (queue and
timer counts), ``_ssock`` (the self-pipe, hidden from users) and ``_write_to_self`` (waking a
sleeping ``select`` when the clock or the gate changes) are used here and nowhere else. A task's
``_must_cancel`` flag and asyncio's running-task table (``_current_tasks``, keyed by
``_get_running_loop()``, up to 3.13) are handed from here to the C module, which reads them when
a task ends.
Everything else is the stock ``asyncio.SelectorEventLoop``: tracing only observes.
"""

from __future__ import annotations

import asyncio
import asyncio.tasks
import asyncio.unix_events
import logging
import sys
import threading
import weakref
from collections.abc import Callable
from types import CoroutineType
from typing import Any, NamedTuple

from loopviz.trace.buffer import DEFAULT_CAPACITY
from loopviz.trace.clock import DilatedClock, check_speed
from loopviz.trace.core import speedups
from loopviz.trace.describe import CALLBACK_ENTRY, is_user_code, user_site
from loopviz.trace.gate import StepGate
from loopviz.trace.proxy import PROXY_TYPES, PyTracedCoroutine, TracedCoroutine
from loopviz.trace.records import SPAWN
from loopviz.trace.selector import tracing_selector
from loopviz.trace.tracer import DEFAULT_STALL_THRESHOLD, StallWatchdog, Tracer, stall_limit

log = logging.getLogger("loopviz.trace")

#: Longest ready queue whose tasks ``before_io_wait`` names (see ``_ready_tasks``).
READY_TASKS_LIMIT = 64


class _SpawnHelpers:
    """The parts of ``create_task`` written once, for the C and the Python spawner."""

    tracer: Tracer

    def _create_other_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        """What the C ``create_task`` leaves to Python: a proxy already, a generator-based
        coroutine, not a coroutine at all (asyncio's own create_task raises its usual error),
        and a task that may start eagerly (a task factory, ``eager_start``).

        Keyword arguments go on to asyncio exactly as given, as in the C path: a task factory
        that takes none (``factory(loop, coro)``) must keep working."""
        if type(coro) in PROXY_TYPES or not asyncio.iscoroutine(coro):
            return _BASE_CREATE_TASK(self, coro, **kwargs)
        caller = sys._getframe(1)
        if caller.f_code is _PY_CREATE_TASK:
            caller = caller.f_back
        if type(coro) is CoroutineType:
            code = coro.cr_code
            inline = code if is_user_code(code) else None
            return self._spawn(coro, code, inline, caller, kwargs)
        return self._spawn(coro, getattr(coro, "gi_code", None), None, caller, kwargs)

    def _spawn(
        self, coro: Any, coro_code: Any, code: Any, caller: Any, kwargs: dict[str, Any]
    ) -> asyncio.Task[Any]:
        """Make the task around a proxy of ``coro`` and record the spawn: its name, its
        coroutine's code, and the user's line that spawned it (``caller`` or further out).
        ``code`` is the coroutine's code when the proxy may describe it inline."""
        if kwargs.get("name") is None:
            given = _name_given_to_caller(caller)
            if given is not None:
                kwargs["name"] = given
        tracer = self.tracer
        task_id = tracer.new_task_id()
        try:
            site_code, site_lasti = user_site(caller)
        except Exception:  # pragma: no cover - tracing must never break the program
            log.exception("loopviz: finding where a task was spawned failed")
            site_code, site_lasti = None, -1
        # Recorded once the task exists, or at its first step if that comes first: a task
        # factory or eager_start may run it inside asyncio's create_task (eager tasks).
        spawn = tracer.pending_spawn = (task_id, tracer.current, coro_code, site_code, site_lasti)
        try:
            task = _BASE_CREATE_TASK(self, tracer.proxy_type(coro, tracer, task_id, code), **kwargs)
        finally:
            if tracer.pending_spawn is spawn:
                tracer.pending_spawn = None
            else:
                spawn = None  # its first step recorded it
        if spawn is not None:
            tracer.record_spawn(spawn, task.get_name())
        else:
            tracer.spawn_done(task_id, task.get_name())
        return task


class PySpawner(_SpawnHelpers):
    """``create_task`` in Python: every task's coroutine goes in a proxy, and its spawn is
    recorded. ``CSpawner`` does the same in C when it is built."""

    def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        if type(coro) is not CoroutineType:
            return self._create_other_task(coro, **kwargs)
        code = coro.cr_code
        # The proxy describes a suspension inline when the coroutine is the user's own.
        inline = code if is_user_code(code) else None
        return self._spawn(coro, code, inline, sys._getframe(1), kwargs)


_PY_CREATE_TASK = PySpawner.create_task.__code__
_BASE_CREATE_TASK = asyncio.SelectorEventLoop.create_task
if speedups is not None:

    class CSpawner(_SpawnHelpers):
        """``PySpawner.create_task`` in C (a descriptor, so the loop class stays a plain Python
        class: a C base class would change how instances are made, and slow asyncio down)."""

        create_task = speedups.SpawnMethod()

    _Spawner: type = CSpawner
else:
    _Spawner = PySpawner


class _Parts(NamedTuple):
    """What a traced loop has beyond a stock one."""

    clock: DilatedClock
    tracer: Tracer
    gate: StepGate


#: Each traced loop's parts, kept off the loop's own attributes (see TracedEventLoop.__init__).
_PARTS: weakref.WeakKeyDictionary[TracedEventLoop, _Parts] = weakref.WeakKeyDictionary()


class TracedEventLoop(_Spawner, asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]
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
        start_time: float = 0.0,
        first_task_id: int = 1,
    ) -> None:
        """``virtual_time=True`` makes timers fire at once, in order, with the clock jumping
        to each deadline (a simulation: tests and fast replays); real I/O is still waited for.
        ``pure_python=True`` records through the Python code even where the C module is
        built: the proxy and the selector here, ``create_task`` by ``PyTracedEventLoop``
        (``new_event_loop`` picks it; tests compare the two). ``start_time`` is the loop time
        its clock starts at and ``first_task_id`` its first task's id: the loops of one program
        (``asyncio.run`` called again, loops in threads) then share one time line and never
        give two tasks one id."""
        # No instance attribute of our own: the clock, the tracer and the gate live on the
        # selector, and in _PARTS for after close() (see _parts()). Measured on W3: three
        # attributes more than the stock loop's cost 2% of plain asyncio's instructions on 3.13
        # and 8% on 3.14 (every ``self._ready`` in asyncio is then read the slower way).
        clock = DilatedClock(speed, virtual=virtual_time, start=start_time)
        tracer = Tracer(clock, capacity=capacity, stall_threshold=stall_threshold)
        tracer.task_ids = first_task_id - 1
        tracer.proxy_type = PyTracedCoroutine if pure_python else TracedCoroutine
        selector = tracing_selector(tracer, clock, pure_python=pure_python)
        super().__init__(selector)
        gate = StepGate(clock, self._wake)
        _PARTS[self] = _Parts(clock, tracer, gate)
        tracer.gate = gate
        tracer.cancel_pending = _cancel_pending
        selector.attach(
            gate,
            counts=self._counts,
            ready_tasks=self._ready_tasks,
            live_tasks=self._live_tasks,
            due_timers=self._due_timers,
            next_timer=self._next_timer,
            internal_fds=frozenset({self._ssock.fileno()}),
        )
        if virtual_time:
            selector.virtual_time = True
        if paused:
            self.pause()
        else:
            self._clock_event()  # the stream starts by saying the speed it runs at

    # -- what the selector keeps for the loop ------------------------------------------------------

    def _parts(self) -> Any:
        """Where the clock, the tracer and the gate are: the selector while the loop is open
        (two attribute reads), else _PARTS (``close()`` drops the selector)."""
        selector = self._selector
        return selector if selector is not None else _PARTS[self]

    @property
    def clock(self) -> DilatedClock:
        """The loop's dilated clock: what ``loop.time()`` reads."""
        return self._parts().clock  # type: ignore[no-any-return]

    @property
    def tracer(self) -> Tracer:
        """Records what this loop does."""
        return self._parts().tracer  # type: ignore[no-any-return]

    @property
    def gate(self) -> StepGate:
        """Pauses and steps this loop."""
        return self._parts().gate  # type: ignore[no-any-return]

    def time(self) -> float:
        return self._parts().clock.now()  # type: ignore[no-any-return]

    # -- private internals, in one place ----------------------------------------------------------

    def _run_once(self) -> None:
        gate = self._selector.gate
        if gate.armed:
            gate.at_iteration_start()
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

    def _next_timer(self) -> float | None:
        """Loop time of the earliest live timer (read only when the gate holds the loop)."""
        return min((h._when for h in self._scheduled if not h._cancelled), default=None)

    def _wake(self) -> None:
        if not self.is_closed():
            self._write_to_self()

    # -- running --------------------------------------------------------------------------------

    def run_forever(self) -> None:
        self.tracer.loop_thread_id = threading.get_ident()
        tracer = self.tracer
        if tracer.watchdog is None and tracer.stall_threshold > 0:
            tracer.watchdog = StallWatchdog(tracer)
            tracer.watchdog.start()
        try:
            super().run_forever()
        finally:
            self.tracer.flush_output()

    def close(self) -> None:
        self.gate.close()
        watchdog = self.tracer.watchdog
        if watchdog is not None:
            watchdog.stop()
            watchdog.join(timeout=1)
            self.tracer.watchdog = None
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

    def print_from_thread(self, text: str, thread: str) -> None:
        """What a scene's own thread prints (a worker's log lines): an ``output`` event naming
        ``thread``. Safe from any thread."""
        self.tracer.write_thread_output(text, thread)

    def emit(self, kind: str, **fields: Any) -> None:
        """Put a scene's domain event on the stream. Safe from any thread."""
        self.tracer.emit(kind, fields)

    def _clock_event(self) -> None:
        self.tracer.clock_changed(self.clock.speed, self.gate.paused, self.gate.stepping)


#: The Task attribute that is true when a cancel() arrived while the task ran its last step
#: (asyncio then ends it cancelled).
_CANCEL_PENDING = "_must_cancel"


def _cancel_pending(task: asyncio.Task[Any]) -> bool:
    return bool(getattr(task, _CANCEL_PENDING, False))


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


if speedups is not None:

    class PyTracedEventLoop(PySpawner, TracedEventLoop):
        """The traced loop with every part in Python, as it runs without the C module."""

else:
    PyTracedEventLoop = TracedEventLoop


def new_event_loop(**options: Any) -> TracedEventLoop:
    """A traced loop; use it wherever a stock loop goes (``asyncio.Runner(loop_factory=...)``)."""
    if options.get("pure_python"):
        return PyTracedEventLoop(**options)
    return TracedEventLoop(**options)


def make_default(factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    """Have every loop asyncio makes by default come from ``factory``: ``asyncio.run``,
    ``asyncio.Runner()``, ``asyncio.new_event_loop()`` and ``get_event_loop()`` on every Python
    from 3.11 to 3.14 (3.14 deprecates setting a policy, so the default policy's own loop
    factory is replaced instead). Loops built by naming a class stay as they are."""
    policy = asyncio.unix_events._UnixDefaultEventLoopPolicy  # type: ignore[attr-defined]
    policy._loop_factory = staticmethod(factory)


def keep_loops_traced(
    factory: Callable[[], asyncio.AbstractEventLoop], tell: Callable[[str], None]
) -> None:
    """A program that installs another event loop (``uvloop.install()``, a policy of its own,
    ``asyncio.run(..., loop_factory=uvloop.new_event_loop)``, ``uvloop.run``) is told once,
    through ``tell``, and runs on the traced loop: loopviz traces the stock selector loop only.
    Loops asyncio's own factories make are traced without a word."""
    told: list[str] = []

    def other(what: Any) -> bool:
        module = getattr(type(what) if not callable(what) else what, "__module__", "") or ""
        foreign = not module.startswith("asyncio") and what is not factory
        if foreign and not told:
            name = getattr(what, "__qualname__", type(what).__qualname__)
            told.append(name)
            tell(
                f"this program installs another event loop ({module}.{name}); loopviz traces "
                "the stock selector loop, and runs the program on that"
            )
        return foreign

    stock_set_policy = asyncio.events.set_event_loop_policy

    def set_event_loop_policy(policy: Any) -> None:
        if policy is not None and other(type(policy)):
            return
        stock_set_policy(policy)

    asyncio.set_event_loop_policy = asyncio.events.set_event_loop_policy = set_event_loop_policy
    stock_runner_init = asyncio.Runner.__init__

    def runner_init(
        self: asyncio.Runner, *, debug: bool | None = None, loop_factory: Any = None
    ) -> None:
        if loop_factory is not None and loop_factory is not factory:
            other(loop_factory)
            loop_factory = None  # the default: a traced loop
        stock_runner_init(self, debug=debug, loop_factory=loop_factory)

    asyncio.Runner.__init__ = runner_init  # type: ignore[method-assign]


def _running_task_table() -> dict[Any, asyncio.Task[Any]] | None:
    """asyncio's ``{loop: running task}`` table, where its Task keeps one: the C Task of 3.14
    keeps the running task in the thread state instead (None: ask ``current_task()``)."""
    try:
        import _asyncio
    except ImportError:  # pragma: no cover - asyncio's pure-Python tasks
        return asyncio.tasks._current_tasks  # type: ignore[attr-defined]
    return getattr(_asyncio, "_current_tasks", None)


if speedups is not None:
    speedups.set_task_internals(
        cancel_pending=_CANCEL_PENDING,
        current_tasks=_running_task_table(),
        running_loop=asyncio.events._get_running_loop,
    )
    speedups.configure_spawn(
        spawn=SPAWN,
        create_task=_BASE_CREATE_TASK,
        naming_callers=tuple(_NAMING_CALLERS),
        callback_entry=CALLBACK_ENTRY,
        task_factory="_task_factory",  # set by loop.set_task_factory(): maybe eager
        selector="_selector",  # which keeps the tracer (TracedEventLoop.__init__)
    )
