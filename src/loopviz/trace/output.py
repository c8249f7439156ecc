"""Capture what traced tasks print, as ``output`` events attributed to the printing task.

``sys.stdout`` is process-wide, so the replacement routes by thread: writes from the traced loop's
thread become events (flushed at the end of each task step); every other thread, the UI's included,
writes to the stream that was there before.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from loopviz.trace.tracer import Tracer


class _RoutedStdout:
    def __init__(self, tracer: Tracer, fallback: TextIO) -> None:
        self._tracer = tracer
        self._fallback = fallback

    def write(self, text: str) -> int:
        if threading.get_ident() == self._tracer.loop_thread_id:
            self._tracer.write_output(text)
            return len(text)
        return self._fallback.write(text)

    def flush(self) -> None:
        if threading.get_ident() != self._tracer.loop_thread_id:
            self._fallback.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


class _ProgramStdout:
    """``sys.stdout`` for a traced program: text printed on a traced loop's thread is also an
    ``output`` event of the task printing it. With ``passthrough`` it still goes where it went
    (``loopviz run --headless``: the program's output is its own, byte for byte); without, only
    text printed off the loops' threads does (the dashboard shows the rest in its panel)."""

    def __init__(
        self, tracer_on: Callable[[int], Tracer | None], fallback: TextIO, passthrough: bool
    ) -> None:
        self._tracer_on = tracer_on
        self._fallback = fallback
        self._passthrough = passthrough

    def write(self, text: str) -> int:
        tracer = self._tracer_on(threading.get_ident())
        if tracer is not None:
            tracer.write_output(text)
            if not self._passthrough:
                return len(text)
        return self._fallback.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


def route_output(tracer_on: Callable[[int], Tracer | None], *, passthrough: bool) -> None:
    """Capture what a traced program prints for good (see ``_ProgramStdout``); ``tracer_on``
    names the tracer of the loop running on a thread, if one does."""
    sys.stdout = _ProgramStdout(tracer_on, sys.stdout, passthrough)  # type: ignore[assignment]


@contextmanager
def capture_output(tracer: Tracer) -> Iterator[None]:
    """While active, ``print`` on the traced loop's thread emits ``output`` events."""
    previous = sys.stdout
    routed = _RoutedStdout(tracer, previous)
    sys.stdout = routed  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.stdout is routed:
            sys.stdout = previous
        tracer.flush_output()
