"""Signals that ask a headless command to stop, turned into a flag it checks between batches.

A signal that would end the process (``kill``, ``timeout``, a closed terminal, Ctrl+C) instead
sets ``StopSignals.received``; the command finishes what it was writing, keeps it, and exits
``128 + signal`` as if killed, so a shell still sees which signal it was. The handler only sets a
flag: raising inside it could cut a line of output in half. Signals the parent set to be
ignored (``nohup``) stay ignored.
"""

from __future__ import annotations

import signal
from types import FrameType, TracebackType
from typing import Any

#: Signals whose default action ends the process and that are sent to it from outside (not
#: faults like SIGSEGV, not SIGPIPE, which Python ignores and write errors report).
_NAMES = (
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGTERM",
    "SIGUSR1",
    "SIGUSR2",
    "SIGALRM",
    "SIGVTALRM",
    "SIGPROF",
    "SIGXCPU",
    "SIGIO",
    "SIGPWR",
)


def stop_signals() -> list[int]:
    """The signals ``StopSignals`` catches on this platform, real-time ones included."""
    found = [int(getattr(signal, name)) for name in _NAMES if hasattr(signal, name)]
    if hasattr(signal, "SIGRTMIN"):
        found += range(signal.SIGRTMIN, signal.SIGRTMAX + 1)
    return found


def signal_name(number: int) -> str:
    """``SIGTERM``; ``SIGRTMIN+3`` for a real-time signal."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIGRTMIN+{number - signal.SIGRTMIN}"


class StopSignals:
    """``with StopSignals() as stop:`` ... ``if stop.received: ...``; handlers restored on exit."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for number in stop_signals():
            current = signal.getsignal(number)
            if current in (signal.SIG_DFL, signal.default_int_handler):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = number

    def requested(self) -> bool:
        """Whether a stop signal has arrived (for code that waits and must give up)."""
        return self.received is not None

    @property
    def exit_status(self) -> int:
        """What a shell reports for a process the signal killed."""
        return 128 + self.received if self.received is not None else 0
