"""The recorder on the loop's hot path: cheap tuples into the buffer, nothing derived here.

Like trio's instruments, tracing must never change or break the program it observes: every hook
here is guarded, and a hook that fails turns detailed tracing off instead of raising into the task.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import threading
import time
from typing import Any

from loopviz.trace import records as R
from loopviz.trace.buffer import DEFAULT_CAPACITY, EventBuffer
from loopviz.trace.clock import DilatedClock
from loopviz.trace.describe import suspension, user_site
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


class Tracer:
    """Owns the buffer, the sequence counter and the per-step bookkeeping of one traced loop."""

    def __init__(
        self,
        clock: DilatedClock,
        capacity: int = DEFAULT_CAPACITY,
        stall_threshold: float = DEFAULT_STALL_THRESHOLD,
    ) -> None:
        self.clock = clock
        self.buffer = EventBuffer(capacity)
        self.append = self.buffer.append
        self.next_seq = itertools.count().__next__
        self.now = clock.now
        self.stall_threshold = stall_threshold
        self.stall_limit = stall_limit(stall_threshold, clock.speed)
        self.details = True  # describe suspensions; turned off if describing ever fails
        #: The task being stepped right now, and when (perf_counter) its step began; 0.0 if none.
        self.current: int | None = None
        self.step_started = 0.0
        self.stall_sample: tuple[float, Any, int] | None = None
        self.pending_output: list[str] = []
        #: Set by the consumer after it lost events, so the next I/O wait repeats the fd map.
        self.resync_requested = True
        self.loop_thread_id: int | None = None
        self.gate: StepGate | None = None
        self._task_ids = itertools.count(1)

    # -- tasks ---------------------------------------------------------------------------------

    def new_task_id(self) -> int:
        return next(self._task_ids)

    def spawned(self, task_id: int, task: asyncio.Task[Any], coro: Any) -> None:
        try:
            code, line = user_site(sys._getframe(2))
            coro_code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
            self.append(
                (R.SPAWN, self.next_seq(), self.now(), task_id, self.current, task.get_name(),
                 coro_code, code, line)
            )
        except Exception:  # pragma: no cover - tracing must never break the program
            log.exception("loopviz: recording a task spawn failed")

    def step_failed(self, task_id: int, exc: BaseException, started: float) -> None:
        """The step ended by raising: the task is finished (returned, failed or cancelled)."""
        duration = time.perf_counter() - started
        self.step_started = 0.0
        self.current = None
        if isinstance(exc, StopIteration):
            outcome, detail = "returned", _short_repr(exc.value)
        elif isinstance(exc, asyncio.CancelledError):
            outcome, detail = "cancelled", ""
        else:
            outcome, detail = "failed", f"{type(exc).__name__}: {exc}"[:200]
        if self.pending_output:
            self._flush_output(task_id)
        self.append((R.AFTER_STEP, self.next_seq(), self.now(), task_id, None, 0, None, None, None,
                     duration))
        if duration > self.stall_limit:
            self._stalled(task_id, duration, started, None, 0)
        self.append((R.EXIT, self.next_seq(), self.now(), task_id, outcome, detail))
        gate = self.gate
        if gate is not None and gate.armed:
            gate.after_task_step()

    def step_done(self, task_id: int, coro: Any, yielded: Any, started: float) -> None:
        duration = time.perf_counter() - started
        self.step_started = 0.0
        self.current = None
        if self.pending_output:
            self._flush_output(task_id)
        user_code = await_code = await_arg = None
        user_line = 0
        if self.details:
            try:
                user_code, user_line, await_code, await_arg = suspension(coro)
            except Exception:
                self.details = False
                log.exception("loopviz: describing a suspended task failed; details are off")
        if yielded is None:
            what = R.YIELDED_NOTHING
        elif isinstance(yielded, asyncio.Task):
            what = getattr(yielded.get_coro(), "task_id", R.YIELDED_FUTURE)
        else:
            what = R.YIELDED_FUTURE
        self.append((R.AFTER_STEP, self.next_seq(), self.now(), task_id, user_code, user_line,
                     await_code, await_arg, what, duration))
        if duration > self.stall_limit:
            self._stalled(task_id, duration, started, user_code, user_line)
        gate = self.gate
        if gate is not None and gate.armed:
            gate.after_task_step()

    def _stalled(self, task_id: int, duration: float, started: float, code: Any, line: int) -> None:
        sample = self.stall_sample
        if sample is not None and sample[0] == started:
            code, line = sample[1], sample[2]  # where the loop thread was while it was stuck
        self.stall_sample = None
        self.append((R.STALL, self.next_seq(), self.now(), task_id, duration, code, line))

    # -- output, fds, scenes, clock ------------------------------------------------------------

    def write_output(self, text: str) -> None:
        self.pending_output.append(text)

    def flush_output(self) -> None:
        if self.pending_output:
            self._flush_output(self.current)

    def _flush_output(self, task_id: int | None) -> None:
        text = "".join(self.pending_output)
        self.pending_output.clear()
        self.append((R.OUTPUT, self.next_seq(), self.now(), task_id, text))

    def fd_watch(self, fd: int, mask: int) -> None:
        self.append((R.FD_WATCH, self.next_seq(), self.now(), fd, mask))

    def fd_unwatch(self, fd: int) -> None:
        self.append((R.FD_UNWATCH, self.next_seq(), self.now(), fd))

    def label_fd(self, fd: int, label: str) -> None:
        self.append((R.FD_LABEL, self.next_seq(), self.now(), fd, label))

    def emit(self, kind: str, fields: dict[str, Any]) -> None:
        """A scene's domain event (``queue.published``...). Safe from any thread."""
        self.append((R.SCENE, self.next_seq(), self.now(), kind, fields))

    def clock_changed(self, speed: float, paused: bool, stepping: bool) -> None:
        self.append((R.CLOCK, self.next_seq(), self.now(), speed, paused, stepping))


class StallWatchdog(threading.Thread):
    """Samples the loop thread's stack while a task step overruns, to name the blocking line.

    After a step ends the task sits at its next ``await``; only a look taken *during* the stall
    shows the call that blocked (``time.sleep(0.3)``, a blocking ``recv``).
    """

    def __init__(self, tracer: Tracer) -> None:
        super().__init__(name="loopviz-stall-watchdog", daemon=True)
        self._tracer = tracer
        self._stop_event = threading.Event()

    def run(self) -> None:
        tracer = self._tracer
        while not self._stop_event.wait(max(0.004, min(0.025, tracer.stall_limit / 4))):
            started = tracer.step_started
            if not started or time.perf_counter() - started < tracer.stall_limit:
                continue
            sample = tracer.stall_sample
            if sample is not None and sample[0] == started:
                continue
            frame = sys._current_frames().get(tracer.loop_thread_id or -1)
            code, line = user_site(frame)
            del frame
            if code is not None and tracer.step_started == started:
                tracer.stall_sample = (started, code, line)

    def stop(self) -> None:
        self._stop_event.set()


def _short_repr(value: Any) -> str:
    if value is None:
        return ""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."
