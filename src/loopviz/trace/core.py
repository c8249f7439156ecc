"""The state every task step touches, in C when the optional ``_speedups`` module is built.

``Recorder`` holds the sequence counter, the step in progress, the fast-path switch and the stall
limit; ``Tracer`` subclasses it. With ``_speedups`` it is a C type whose fields the C proxy reads
without a dictionary lookup; without it (no compiler at install time, or
``LOOPVIZ_PURE_PYTHON=1``), ``PyRecorder`` has the same fields and everything works the same,
only slower. ``IMPLEMENTATION`` says which one runs.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from types import ModuleType
from typing import Any

from loopviz.trace.records import BEFORE_STEP

speedups: ModuleType | None
try:
    if os.environ.get("LOOPVIZ_PURE_PYTHON"):
        raise ImportError("LOOPVIZ_PURE_PYTHON is set")
    from loopviz.trace import _speedups as speedups
except ImportError:
    speedups = None

IMPLEMENTATION = "C" if speedups is not None else "pure Python"


class PyRecorder:
    """The pure-Python Recorder: the fields of ``_speedups.Recorder``, as attributes."""

    def __init__(self) -> None:
        self.append: Any = None
        self.ring: Any = None  # only the C proxy writes to a ring directly
        #: The task being stepped right now and when (monotonic) its step began; 0.0 if none.
        self.current: int | None = None
        self.step_started = 0.0
        self.stall_limit = 0.1
        #: True when a step's end needs the slow path (output to flush, before_task_step sent,
        #: the gate armed): the proxy's fast path checks this one flag.
        self.special = False
        #: True once this step's before_task_step was written (something happened mid-step).
        self.before_sent = False
        self.details = True  # describe suspensions; turned off if describing ever fails
        #: A spawn set aside while asyncio's create_task runs (recorded by then, or by the
        #: task's first step if it starts eagerly).
        self.pending_spawn: Any = None
        self.loop_thread_id: int | None = None
        self.next_seq = itertools.count().__next__
        #: The last task id given out (set before the loop runs to number its tasks from there).
        self.task_ids = 0

    def new_task_id(self) -> int:
        self.task_ids += 1
        return self.task_ids

    def record(self, code: int, *payload: Any) -> None:
        """Append a record; inside a task step (on the loop thread) open the step first."""
        if (
            self.current is not None
            and not self.before_sent
            and threading.get_ident() == self.loop_thread_id
        ):
            self.before_sent = True
            self.append((BEFORE_STEP, self.next_seq(), self.step_started, self.current))
        self.append((code, self.next_seq(), time.monotonic(), *payload))


Recorder: type = speedups.Recorder if speedups is not None else PyRecorder
