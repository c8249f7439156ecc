"""The step gate: pause, resume and single-step the traced loop from any thread.

The loop thread passes two checkpoints: at the start of every loop iteration and after every task
step. While the loop runs freely ``armed`` is False and a checkpoint costs one attribute read. When
paused, a checkpoint blocks the loop thread (never the UI's), so nothing fires and, with the clock
frozen, virtual time stands still.

The clock is frozen by the loop thread when it stops at a checkpoint, and runs again while a step
it was given runs: what the loop does costs the same loop time stepped as running (a blocking
call in a step moves the clock by what it took), and only the waiting at the gate is free. A
pause asked for while the loop is stuck in a blocking call takes effect when the call returns.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from loopviz.trace.clock import DilatedClock

ITERATION = "iteration"
TASK_STEP = "task step"
#: A following thread's state besides a deadline: waiting for a step; working.
IDLE = float("inf")
BUSY = float("-inf")
#: Wall seconds a stepped jump waits for following threads at most (one that hangs must not
#: freeze the loop).
SETTLE_LIMIT = 1.0


class StepGate:
    """Pause/step state machine shared by the loop thread and its controllers.

    Step requests queue up: five quick presses of ``n`` run five iterations, in order, even
    when they all arrive before the loop thread wakes up.
    """

    def __init__(self, clock: DilatedClock, wake: Callable[[], None]) -> None:
        self._clock = clock
        self._wake = wake
        self._cond = threading.Condition()
        self._paused = False
        #: Steps asked for and not started yet: ITERATION or TASK_STEP each.
        self._requests: deque[str] = deque()
        #: The step running now: "rest of iteration", TASK_STEP, or None.
        self._running: str | None = None
        self._closed = False
        self.armed = False
        #: Where the loop thread is blocked right now (ITERATION / TASK_STEP), or None.
        self.waiting_at: str | None = None
        #: Called on the loop thread each time the gate starts holding it, with where: the
        #: selector records the loop's queues as they are at that stop (``loop_held``).
        self.on_hold: Callable[[str], None] | None = None
        #: Steps the loop thread has taken from the queue of requests (see ``follow``).
        self.steps_taken = 0
        #: Scene threads that move with the loop, by name: BUSY between two waits, IDLE while
        #: they wait for a step, else the loop time their wait in ``select`` ends (see
        #: ``follower_deadline``, ``settle_followers``).
        self._followers: dict[str, float] = {}

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stepping(self) -> bool:
        return self._running is not None or bool(self._requests)

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self.armed = True
            self._cond.notify_all()
        self._wake()

    def resume(self) -> None:
        self._release(closing=False)

    def step(self) -> None:
        """Run exactly one loop iteration (the rest of the current one if stopped mid-way)."""
        self._request(ITERATION)

    def step_task(self) -> None:
        """Run until the next task step ends."""
        self._request(TASK_STEP)

    def close(self) -> None:
        """Release the loop for good (shutdown): every checkpoint passes from now on."""
        self._release(closing=True)

    def _release(self, *, closing: bool) -> None:
        with self._cond:
            self._closed = self._closed or closing
            self._paused = False
            self._requests.clear()
            self._running = None
            self.armed = False
            self._clock.unfreeze()
            self._cond.notify_all()
        self._wake()

    def _request(self, kind: str) -> None:
        with self._cond:
            if self._closed:
                return
            self._paused = True
            self.armed = True
            self._requests.append(kind)
            self._cond.notify_all()
        self._wake()

    def follow(self, follower: str, seen: int, stopping: Callable[[], bool]) -> int:
        """For a scene's own thread that must move with the loop (the sockets scene's hand-written
        select loop): while the loop is paused, wait until it takes a step after the ``seen``-th,
        so each step the class asks for lets the thread take one step too; running, return at
        once. Returns the steps taken so far, the thread's next ``seen``. The thread counts as
        busy from then until it says where it waits next (``follower_deadline``)."""
        with self._cond:
            self._followers[follower] = IDLE
            self._cond.notify_all()
            while self._paused and not self._closed and self.steps_taken <= seen:
                if stopping():
                    break
                self._cond.wait(0.05)
            self._followers[follower] = BUSY
            return self.steps_taken

    @property
    def has_followers(self) -> bool:
        return bool(self._followers)

    def follower_busy(self, follower: str) -> None:
        """``follower`` is working (between two waits): a stepped jump of the clock waits."""
        with self._cond:
            self._followers[follower] = BUSY

    def follower_deadline(self, follower: str, deadline: float) -> None:
        """``follower`` waits in its own ``select`` until loop time ``deadline``: a stepped jump
        of the clock stops there, so the thread's timeout fires at its own time."""
        with self._cond:
            self._followers[follower] = deadline
            self._cond.notify_all()

    def follower_gone(self, follower: str) -> None:
        with self._cond:
            self._followers.pop(follower, None)
            self._cond.notify_all()

    def settle_followers(self, now: Callable[[], float], limit: float) -> float | None:
        """Before the loop jumps its clock (stepping, or virtual time): wait, at most ``limit``
        wall seconds, until every following thread waits somewhere the jump cannot skip (a
        step, or a deadline still ahead); return the earliest such deadline, which the jump
        must not pass. Without this a quick run of steps could carry the clock past a thread's
        timeout before the thread looked, and its select would wait longer than it asked."""
        with self._cond:
            self._cond.wait_for(
                lambda: all(
                    state == IDLE or (state != BUSY and state > now())
                    for state in self._followers.values()
                ),
                timeout=limit,
            )
            ahead = [s for s in self._followers.values() if s not in (IDLE, BUSY) and s > now()]
            return min(ahead, default=None)

    # -- called on the loop thread -------------------------------------------------------------

    def at_iteration_start(self) -> None:
        with self._cond:
            if self._running == "rest of iteration":
                self._running = None  # the requested iteration is complete
            self._wait(ITERATION)

    def after_task_step(self) -> None:
        with self._cond:
            if self._running == TASK_STEP:
                self._running = None  # the requested task step is complete
            self._wait(TASK_STEP)

    def _wait(self, where: str) -> None:
        """Block while paused with no step to run; then take the next requested step."""
        held = False
        while self._paused and self._running is None and not self._closed:
            if self._requests:
                kind = self._requests.popleft()
                # An iteration asked for mid-way runs the rest of the current one.
                self._running = "rest of iteration" if kind == ITERATION else TASK_STEP
                self.steps_taken += 1
                self._cond.notify_all()  # threads that follow the loop's steps (``follow``)
                if self._clock.frozen:
                    self._clock.unfreeze()  # the step costs loop time, as running would
                break
            if not self._clock.frozen:
                self._clock.freeze()
            if not held:
                held = True
                if self.on_hold is not None:
                    self.on_hold(where)
            self.waiting_at = where
            self._cond.wait()
        self.waiting_at = None
