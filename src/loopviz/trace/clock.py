"""A dilated, pausable clock for the traced loop.

``loop.time()`` reads this clock, so every timer (``sleep``, ``call_later``, timeouts) runs at
``speed`` times wall speed and stands still while paused. The clock is one immutable base tuple,
swapped whole, so any thread may change the speed while the loop thread reads it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from loopviz.speed import MAX_SPEED, MIN_SPEED, check_speed  # noqa: F401 (re-exported)

FROZEN_TICK = 1e-9


class DilatedClock:
    """Virtual seconds since the loop started: ``v0 + (wall - w0) * rate``; rate is 0 when frozen.

    A frozen clock still moves by one nanosecond per reading, as a real clock always moves a
    little between two calls: timers set one after the other then keep their order instead of
    tying (asyncio's timer heap breaks ties arbitrarily).
    """

    __slots__ = ("_base", "_lock", "_speed", "_ticks", "on_change", "virtual")

    def __init__(self, speed: float = 1.0, *, virtual: bool = False, start: float = 0.0) -> None:
        """``start``: the loop time it reads now (a program's second loop goes on from where its
        first one ended, so one program's events keep one time line)."""
        self._speed = check_speed(speed)
        self._lock = threading.Lock()
        self._base: tuple[float, float, float] = (
            start,
            time.monotonic(),
            0.0 if virtual else self._speed,
        )
        self._ticks = 0
        #: Told every new base ``(v0, w0, rate)``; the tracer records it so that the decoder can
        #: turn raw wall-clock stamps into loop time without the hot path reading this clock.
        self.on_change: Callable[[float, float, float], None] | None = None
        #: A simulated clock never runs by itself: only ``advance`` moves it.
        self.virtual = virtual

    def now(self) -> float:
        v0, w0, rate = self._base
        if rate == 0.0:
            self._ticks += 1
            return v0 + self._ticks * FROZEN_TICK
        return v0 + (time.monotonic() - w0) * rate

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def frozen(self) -> bool:
        return self._base[2] == 0.0

    def set_speed(self, speed: float) -> None:
        """Change the rate from now on; virtual time stays continuous."""
        value = check_speed(speed)
        with self._lock:
            self._speed = value
            if not self.frozen:
                self._rebase(value)

    def freeze(self) -> None:
        with self._lock:
            self._rebase(0.0)

    def unfreeze(self) -> None:
        with self._lock:
            self._rebase(0.0 if self.virtual else self._speed)

    def advance(self, seconds: float) -> None:
        """Jump virtual time forward: while stepping, waiting for a timer costs no wall time."""
        if seconds <= 0:
            return
        with self._lock:
            # Anchored at this instant: a stamp taken before the jump still reads the old time.
            self._set_base((self.now() + seconds, time.monotonic(), self._base[2]))

    def wall_seconds(self, virtual_seconds: float | None) -> float | None:
        """How long a wait of ``virtual_seconds`` lasts in wall time at the current rate."""
        if virtual_seconds is None:
            return None
        rate = self._base[2]
        if rate == 0.0:
            return virtual_seconds / self._speed
        return virtual_seconds / rate

    def _rebase(self, rate: float) -> None:
        wall = time.monotonic()
        v0, w0, old_rate = self._base
        if old_rate == 0.0:
            v0 += (self._ticks + 1) * FROZEN_TICK
        self._set_base((v0 + (wall - w0) * old_rate, wall, rate))

    def _set_base(self, base: tuple[float, float, float]) -> None:
        self._base = base
        self._ticks = 0
        if self.on_change is not None:
            self.on_change(*base)

    @property
    def base(self) -> tuple[float, float, float]:
        return self._base
