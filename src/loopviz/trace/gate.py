"""The step gate: pause, resume and single-step the traced loop from any thread.

The loop thread passes two checkpoints: at the start of every loop iteration and after every task
step. While the loop runs freely ``armed`` is False and a checkpoint costs one attribute read. When
paused, a checkpoint blocks the loop thread (never the UI's), so nothing fires and, with the clock
frozen, virtual time stands still.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from loopviz.trace.clock import DilatedClock

ITERATION = "iteration"
TASK_STEP = "task step"


class StepGate:
    """Pause/step state machine shared by the loop thread and its controllers."""

    def __init__(self, clock: DilatedClock, wake: Callable[[], None]) -> None:
        self._clock = clock
        self._wake = wake
        self._cond = threading.Condition()
        self._paused = False
        # What the pending step may still run: None, "iteration", "rest of iteration" or "task".
        self._budget: str | None = None
        self._closed = False
        self.armed = False
        #: Where the loop thread is blocked right now (ITERATION / TASK_STEP), or None.
        self.waiting_at: str | None = None

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stepping(self) -> bool:
        return self._budget is not None

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self.armed = True
            self._clock.freeze()
            self._cond.notify_all()
        self._wake()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._budget = None
            self.armed = False
            self._clock.unfreeze()
            self._cond.notify_all()
        self._wake()

    def step(self) -> None:
        """Run exactly one loop iteration (the rest of the current one if stopped mid-way)."""
        self._request(ITERATION)

    def step_task(self) -> None:
        """Run until the next task step ends."""
        self._request("task")

    def close(self) -> None:
        """Release the loop for good (shutdown): every checkpoint passes from now on."""
        with self._cond:
            self._closed = True
            self._paused = False
            self._budget = None
            self.armed = False
            self._clock.unfreeze()
            self._cond.notify_all()
        self._wake()

    def _request(self, budget: str) -> None:
        with self._cond:
            if self._closed:
                return
            self._paused = True
            self.armed = True
            self._clock.freeze()
            self._budget = budget
            self._cond.notify_all()
        self._wake()

    # -- called on the loop thread -------------------------------------------------------------

    def at_iteration_start(self) -> None:
        with self._cond:
            if self._budget == "rest of iteration":
                self._budget = None  # the requested iteration is complete
            self._wait(ITERATION)
            if self._budget == ITERATION:
                self._budget = "rest of iteration"

    def after_task_step(self) -> None:
        with self._cond:
            if self._budget == "task":
                self._budget = None  # the requested task step is complete
            self._wait(TASK_STEP)
            if self._budget == ITERATION:
                self._budget = "rest of iteration"

    def _wait(self, where: str) -> None:
        while self._paused and self._budget is None and not self._closed:
            self.waiting_at = where
            self._cond.wait()
        self.waiting_at = None
