"""The coroutine proxy that marks where each task step starts and ends.

The C ``asyncio.Task`` drives a non-native coroutine through its ``send``/``throw`` methods, so a
thin proxy sees every step without touching the task. It deliberately has no ``__next__`` (the C
task would then call ``__next__`` instead of ``send``), and the class is defined once per process
because asyncio caches coroutine types.
"""

from __future__ import annotations

import collections.abc
import time
from typing import Any

from loopviz.trace import records as R
from loopviz.trace.tracer import Tracer

_perf_counter = time.perf_counter


class TracedCoroutine(collections.abc.Coroutine):  # type: ignore[type-arg]
    """Wraps the coroutine of one task; forwards everything, recording step boundaries."""

    __slots__ = ("__weakref__", "_coro", "_tracer", "task_id")

    def __init__(self, coro: Any, tracer: Tracer, task_id: int) -> None:
        self._coro = coro
        self._tracer = tracer
        self.task_id = task_id

    def send(self, value: Any) -> Any:
        tracer = self._tracer
        task_id = self.task_id
        tracer.current = task_id
        started = tracer.step_started = _perf_counter()
        tracer.append((R.BEFORE_STEP, tracer.next_seq(), tracer.now(), task_id))
        try:
            yielded = self._coro.send(value)
        except BaseException as exc:
            tracer.step_failed(task_id, exc, started)
            raise
        tracer.step_done(task_id, self._coro, yielded, started)
        return yielded

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        tracer = self._tracer
        task_id = self.task_id
        tracer.current = task_id
        started = tracer.step_started = _perf_counter()
        tracer.append((R.BEFORE_STEP, tracer.next_seq(), tracer.now(), task_id))
        try:
            if val is None and tb is None:
                yielded = self._coro.throw(typ)
            else:  # pragma: no cover - the three-argument form is deprecated
                yielded = self._coro.throw(typ, val, tb)
        except BaseException as exc:
            tracer.step_failed(task_id, exc, started)
            raise
        tracer.step_done(task_id, self._coro, yielded, started)
        return yielded

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Any:
        return self._coro.__await__()

    def __getattr__(self, name: str) -> Any:
        """Introspection (``cr_frame``, ``__qualname__``...) reads the user's coroutine."""
        if name == "_coro":
            raise AttributeError(name)
        return getattr(self._coro, name)

    @property
    def wrapped(self) -> Any:
        """The user's own coroutine object."""
        return self._coro

    def __repr__(self) -> str:
        return repr(self._coro)
