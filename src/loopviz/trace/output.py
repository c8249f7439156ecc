"""Capture what traced tasks print, as ``output`` events attributed to the printing task.

``sys.stdout`` is process-wide, so the replacement routes by thread: writes from the traced loop's
thread become events (flushed at the end of each task step); every other thread, the UI's included,
writes to the stream that was there before.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
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
