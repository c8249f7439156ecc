"""The recorder on the loop's hot path: cheap tuples into the buffer, nothing derived here.

A task step costs one record: the proxy appends a single STEP tuple when the step ends, and the
decoder expands it into ``before_task_step`` + ``after_task_step``. Only when something else is
recorded *during* a step (a spawn, printed output, an fd change, a scene event) is the
``before_task_step`` written first, so the stream keeps its order. Stamps are raw
``time.monotonic()`` readings; the decoder turns them into loop time from CLOCK_BASE records.

Like trio's instruments, tracing must never change or break the program it observes: describing
a suspension is guarded, and if it ever fails, details are turned off instead of raising.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from loopviz.trace import records as R
from loopviz.trace.buffer import DEFAULT_CAPACITY, EventBuffer
from loopviz.trace.clock import DilatedClock
from loopviz.trace.core import Recorder
from loopviz.trace.describe import line_of, user_site
from loopviz.trace.gate import StepGate

log = logging.getLogger("loopviz.trace")

DEFAULT_STALL_THRESHOLD = 0.1  # seconds: wall time at 1x or slower, loop time above 1x
MIN_STALL_WALL = 0.01  # below this a "stall" at high speed is only GIL or scheduler noise


def stall_limit(threshold: float, speed: float) -> float:
    """Wall seconds a task step may take before it counts as stalling the loop.

    At 1x or slower it is ``threshold`` of wall time. Faster, it is ``threshold`` of loop time
    (a 12.5 ms block at 20x delays every timer by 0.25 s), but never under 10 ms of wall time.
    """
    if threshold <= 0:
        return float("inf")
    return max(threshold / max(speed, 1.0), min(threshold, MIN_STALL_WALL))


class Tracer(Recorder):
    """Owns the buffer, the sequence counter and the per-step bookkeeping of one traced loop.

    The fields a task step touches (``current``, ``step_started``, ``special``, ``before_sent``,
    ``stall_limit``, ``details``, ``append``, ``next_seq``) live in ``Recorder`` (C when built).
    """

    def __init__(
        self,
        clock: DilatedClock,
        capacity: int = DEFAULT_CAPACITY,
        stall_threshold: float = DEFAULT_STALL_THRESHOLD,
    ) -> None:
        super().__init__()
        self.buffer = EventBuffer(capacity)
        self.append = self.buffer.append
        self.ring = self.buffer.ring
        self.stall_threshold = stall_threshold
        self.stall_limit = stall_limit(stall_threshold, clock.speed)
        self.stall_sample: tuple[float, Any, int] | None = None
        self.pending_output: list[str] = []
        self.loose_output: list[str] = []
        #: Set by the consumer after it lost events, so the next I/O wait repeats the fd map.
        self.resync_requested = True
        self.gate: StepGate | None = None
        #: The coroutine proxy the loop wraps task coroutines in (set by the loop).
        self.proxy_type: Any = None
        #: The stall watchdog thread, while the loop runs.
        self.watchdog: StallWatchdog | None = None
        #: Whether a task has a cancel() waiting that will end it cancelled (set by the loop,
        #: which keeps asyncio's private attributes to itself).
        self.cancel_pending: Callable[[Any], bool] = lambda task: False
        #: How many steps run inside other steps right now (eager tasks' first steps).
        self.nesting = 0
        #: Names eager tasks' spawns were recorded with, until their create_task returns.
        self.eager_names: dict[int, str] = {}
        clock.on_change = self.clock_base
        self.clock_base(*clock.base)

    # -- tasks ---------------------------------------------------------------------------------

    def record_spawn(self, spawn: tuple[int, Any, Any, Any, int], name: str) -> None:
        """Record a spawn that ``create_task`` set aside as ``pending_spawn``."""
        task_id, parent, coro_code, site_code, site_lasti = spawn
        self.record(R.SPAWN, task_id, parent, name, coro_code, site_code, site_lasti)

    def spawn_done(self, task_id: int, name: str) -> None:
        """``create_task`` returned a task whose spawn its first step recorded: asyncio may
        name it only now (3.12 and 3.13 rename after a task factory ran)."""
        recorded = self.eager_names.pop(task_id, name)
        if recorded != name:
            self.record(R.RENAME, task_id, name)

    def enter_nested_step(self, proxy: Any) -> tuple[int, float] | None:
        """Before a step that begins inside another step, or inside ``create_task`` before its
        task's spawn is recorded: an eager task's first step, which asyncio runs at once.

        The spawn is recorded first, and the outer step is opened (its ``before_task_step``
        written, its output flushed) and set aside, so the stream nests: before(outer),
        task_spawned, before(inner), after(inner), after(outer). Returns what
        ``leave_nested_step`` restores."""
        spawn = self.pending_spawn
        if spawn is not None:
            self.pending_spawn = None
            task = _running_task()
            name = task.get_name() if task is not None and task.get_coro() is proxy else ""
            if self.pending_output and self.current is not None:
                self._flush_output(self.current)
            self.record_spawn(spawn, name)
            self.eager_names[spawn[0]] = name
        outer = self.current
        if outer is None:
            return None
        if self.pending_output:
            self._flush_output(outer)
        if not self.before_sent:
            self.before_sent = True
            self.append((R.BEFORE_STEP, self.next_seq(), self.step_started, outer))
        saved = (outer, self.step_started)
        self.current = None
        self.step_started = 0.0
        self.before_sent = False
        self.nesting += 1
        self.special = True
        return saved

    def leave_nested_step(self, saved: tuple[int, float] | None) -> None:
        """After a nested step: the outer step is the one running again."""
        if saved is None:
            return
        self.nesting -= 1
        self.current, self.step_started = saved
        self.before_sent = True
        self.special = True

    def step_done(
        self,
        task_id: int,
        started: float,
        ended: float,
        code: Any,
        lasti: int,
        await_code: Any,
        await_arg: Any,
        yielded: Any,
    ) -> None:
        """Record the end of a step that suspended (``TracedCoroutine.send`` inlines the common
        case). Output printed in the step is flushed first, while the step is still current,
        so its ``before_task_step`` comes ahead of it."""
        if yielded is None:
            what = R.YIELDED_NOTHING
        elif isinstance(yielded, asyncio.Task):
            what = getattr(yielded.get_coro(), "task_id", R.YIELDED_FUTURE)
        else:
            what = R.YIELDED_FUTURE
        if self.pending_output:
            self._flush_output(task_id, ended)
        before_sent = self.before_sent
        self.current = None
        self.step_started = 0.0
        self.before_sent = False
        self.special = self.gate is not None and self.gate.armed
        self.append(
            (
                R.STEP,
                self.next_seq(),
                ended,
                started,
                task_id,
                code,
                lasti,
                await_code,
                await_arg,
                what,
                before_sent,
            )
        )
        self.step_slow_end(task_id, started, ended, code, lasti)

    def step_slow_end(
        self, task_id: int, started: float, ended: float, code: Any, lasti: int
    ) -> None:
        """The rare part of a step's end: a stall to report, or the step gate to stop at."""
        if ended - started > self.stall_limit:
            self._stalled(task_id, ended - started, started, code, lasti)
        gate = self.gate
        if gate is not None and gate.armed and not self.nesting:
            gate.after_task_step()  # a nested step stops with the step it ran in

    def step_failed(
        self, task_id: int, exc: BaseException, started: float, proxy: Any = None
    ) -> None:
        """The step ended by raising: the task is finished (returned, failed or cancelled)."""
        ended = time.monotonic()
        if isinstance(exc, StopIteration) and self._cancel_waiting(proxy):
            # cancel() arrived during this last step: the task ends cancelled, not returned.
            outcome, detail = "cancelled", ""
        elif isinstance(exc, StopIteration):
            outcome, detail = "returned", _short_repr(exc.value)
        elif isinstance(exc, asyncio.CancelledError):
            outcome, detail = "cancelled", ""
        else:
            outcome, detail = "failed", f"{type(exc).__name__}: {exc}"[:200]
        if self.loose_output:
            self._flush_loose()
        if self.pending_output:
            self._flush_output(self.current, ended)
        before_sent = self.before_sent
        self.current = None
        self.step_started = 0.0
        self.before_sent = False
        self.special = self.gate is not None and self.gate.armed
        self.append(
            (R.EXIT, self.next_seq(), ended, task_id, outcome, detail, started, before_sent)
        )
        self.step_slow_end(task_id, started, ended, None, -1)

    def _cancel_waiting(self, proxy: Any) -> bool:
        """Whether the task driving ``proxy`` (the one running now) has a cancel() waiting."""
        task = _running_task()
        return task is not None and task.get_coro() is proxy and self.cancel_pending(task)

    def _stalled(
        self, task_id: int, duration: float, started: float, code: Any, lasti: int
    ) -> None:
        sample = self.stall_sample
        line = -1
        if sample is not None and sample[0] == started:
            code, line = sample[1], sample[2]  # where the loop thread was while it was stuck
        elif code is not None:
            line = line_of(code, lasti)
        self.stall_sample = None
        self.append((R.STALL, self.next_seq(), time.monotonic(), task_id, duration, code, line))

    # -- output, fds, scenes, clock ------------------------------------------------------------

    def write_output(self, text: str) -> None:
        if self.current is None:  # printed by a plain callback, not a task: no task gets it
            self.loose_output.append(text)
            if "\n" in text:
                self._flush_loose()
            return
        self.pending_output.append(text)
        self.special = True

    def flush_output(self) -> None:
        if self.loose_output:
            self._flush_loose()
        if self.pending_output:
            self._flush_output(self.current)

    def write_thread_output(self, text: str, thread: str) -> None:
        """Text a scene's own thread printed (not the loop's): one ``output`` event, no task,
        naming the thread. Safe from any thread."""
        self.append((R.OUTPUT, self.next_seq(), time.monotonic(), None, text, thread))

    def _flush_loose(self) -> None:
        text = "".join(self.loose_output)
        self.loose_output.clear()
        self.append((R.OUTPUT, self.next_seq(), time.monotonic(), None, text))

    def _flush_output(self, task_id: int | None, at: float | None = None) -> None:
        """One ``output`` event for what the step printed; at a step's end it is stamped with
        the step's end (``at``), the ``t`` of the ``after_task_step`` that follows it."""
        text = "".join(self.pending_output)
        self.pending_output.clear()
        if self.current is not None and not self.before_sent:
            self.before_sent = True
            self.append((R.BEFORE_STEP, self.next_seq(), self.step_started, self.current))
        stamp = time.monotonic() if at is None else at
        self.append((R.OUTPUT, self.next_seq(), stamp, task_id, text))

    def label_fd(self, fd: int, label: str) -> None:
        self.record(R.FD_LABEL, fd, label)

    def emit(self, kind: str, fields: dict[str, Any]) -> None:
        """A scene's domain event (``queue.published``...). Safe from any thread."""
        self.record(R.SCENE, kind, fields)

    def clock_changed(self, speed: float, paused: bool, stepping: bool) -> None:
        self.append((R.CLOCK, self.next_seq(), time.monotonic(), speed, paused, stepping))

    def clock_base(self, v0: float, w0: float, rate: float) -> None:
        self.append((R.CLOCK_BASE, self.next_seq(), w0, v0, w0, rate))


class StallWatchdog(threading.Thread):
    """Samples the loop thread's stack while a task step overruns, to name the blocking line.

    After a step ends the task sits at its next ``await``; only a look taken *during* the stall
    shows the call that blocked (``time.sleep(0.3)``, a blocking ``recv``). With the C recorder
    the thread waits in ``wait_for_stall`` without the GIL, so a healthy loop never hands the
    GIL over to it; the pure-Python recorder is polled a few times per stall limit instead.
    """

    def __init__(self, tracer: Tracer) -> None:
        super().__init__(name="loopviz-stall-watchdog", daemon=True)
        self._tracer = tracer
        self._stop_event = threading.Event()

    def run(self) -> None:
        tracer = self._tracer
        wait_for_stall = getattr(tracer, "wait_for_stall", None)
        while not self._stop_event.is_set():
            sample = tracer.stall_sample
            sampled = sample[0] if sample is not None else 0.0
            if wait_for_stall is not None:
                started = wait_for_stall(sampled)
                if started is None:
                    return
            else:
                if self._stop_event.wait(max(0.004, min(0.025, tracer.stall_limit / 4))):
                    return
                started = tracer.step_started
                if not started or started == sampled:
                    continue
                if time.monotonic() - started < tracer.stall_limit:
                    continue
            self._sample(started)

    def _sample(self, started: float) -> None:
        tracer = self._tracer
        frame = sys._current_frames().get(tracer.loop_thread_id or -1)
        code, lasti = user_site(frame)
        line = line_of(code, lasti)
        del frame
        if code is not None and tracer.step_started == started:
            tracer.stall_sample = (started, code, line)

    def stop(self) -> None:
        self._stop_event.set()
        stop_watching = getattr(self._tracer, "stop_watching", None)
        if stop_watching is not None:
            stop_watching()


def _running_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # driven by hand, outside a running loop
        return None


def _short_repr(value: Any) -> str:
    if value is None:
        return ""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."
