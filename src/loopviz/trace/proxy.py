"""The coroutine proxy that marks where each task step starts and ends.

The C ``asyncio.Task`` drives a non-native coroutine through its ``send``/``throw`` methods, so a
thin proxy sees every step without touching the task. It deliberately has no ``__next__`` (the C
task would then call ``__next__`` instead of ``send``), and the class is defined once per process
because asyncio caches coroutine types.

``send`` is the hottest code in loopviz: it runs once per task step. Its common case (a user
coroutine awaiting a library call such as ``asyncio.sleep``, nothing else to report) is written
out inline and costs one tuple; everything else goes through ``Tracer.step_done``.
"""

from __future__ import annotations

import asyncio
import collections.abc
import logging
import time
from types import CoroutineType
from typing import Any

from loopviz.trace.describe import LIBRARY_CALLS, argument, is_user_code, suspension
from loopviz.trace.records import STEP, YIELDED_FUTURE, YIELDED_NOTHING
from loopviz.trace.tracer import Tracer

_monotonic = time.monotonic
_Future = asyncio.Future
log = logging.getLogger("loopviz.trace")


class TracedCoroutine(collections.abc.Coroutine):  # type: ignore[type-arg]
    """Wraps the coroutine of one task; forwards everything, recording step boundaries."""

    __slots__ = ("__weakref__", "_code", "_coro", "_tracer", "task", "task_id")

    def __init__(self, coro: Any, tracer: Tracer, task_id: int) -> None:
        self._coro = coro
        self._tracer = tracer
        self.task_id = task_id
        #: A weak reference to the task that drives this coroutine (set once it exists).
        self.task: Any = None
        # The inline fast path needs a native coroutine of the user's own code.
        code = coro.cr_code if type(coro) is CoroutineType else None
        self._code = code if code is not None and is_user_code(code) else None

    def send(self, value: Any) -> Any:
        tracer = self._tracer
        tracer.current = task_id = self.task_id
        started = tracer.step_started = _monotonic()
        try:
            yielded = self._coro.send(value)
        except BaseException as exc:
            tracer.step_failed(task_id, exc, started, self.task)
            raise
        ended = _monotonic()
        code = self._code
        await_code = await_arg = None
        if code is not None:
            coro = self._coro
            lasti = coro.cr_frame.f_lasti
            awaited = coro.cr_await
            if type(awaited) is CoroutineType:
                await_code = awaited.cr_code
                argument_name = LIBRARY_CALLS.get(await_code)
                if argument_name is None:  # user code below, or not seen yet: walk the chain
                    code, lasti, await_code, await_arg = self._describe()
                elif argument_name:
                    await_arg = 0 if yielded is None else argument(awaited.cr_frame, argument_name)
        else:
            code, lasti, await_code, await_arg = self._describe()
        # A bare yield or a plain future (a sleep, a socket wait): nothing to look up. A Task
        # or another future type takes the general path, which names what it waits for.
        if yielded is None:
            what = YIELDED_NOTHING
        elif type(yielded) is _Future:
            what = YIELDED_FUTURE
        else:
            what = None
        if what is None or tracer.special or ended - started > tracer.stall_limit:
            tracer.step_done(task_id, started, ended, code, lasti, await_code, await_arg, yielded)
        else:  # the common case, inlined: nothing else to report
            tracer.current = None
            tracer.step_started = 0.0
            tracer.append(
                (
                    STEP,
                    tracer.next_seq(),
                    ended,
                    started,
                    task_id,
                    code,
                    lasti,
                    await_code,
                    await_arg,
                    what,
                    False,
                )
            )
        return yielded

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """Rare (cancellation, errors), so it takes the general, slower bookkeeping path."""
        tracer = self._tracer
        tracer.current = task_id = self.task_id
        started = tracer.step_started = _monotonic()
        try:
            if val is None and tb is None:
                yielded = self._coro.throw(typ)
            else:  # pragma: no cover - the three-argument form is deprecated
                yielded = self._coro.throw(typ, val, tb)
        except BaseException as exc:
            tracer.step_failed(task_id, exc, started, self.task)
            raise
        ended = _monotonic()
        code, lasti, await_code, await_arg = self._describe()
        tracer.step_done(task_id, started, ended, code, lasti, await_code, await_arg, yielded)
        return yielded

    def _describe(self) -> tuple[Any, int, Any, Any]:
        if not self._tracer.details:
            return None, -1, None, None
        try:
            return suspension(self._coro)
        except Exception:
            self._tracer.details = False
            log.exception("loopviz: describing a suspended task failed; details are off")
            return None, -1, None, None

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
