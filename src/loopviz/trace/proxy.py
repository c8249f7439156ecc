"""The coroutine proxy that marks where each task step starts and ends.

The C ``asyncio.Task`` drives a non-native coroutine through its ``send``/``throw`` methods, so a
thin proxy sees every step without touching the task. It deliberately has no ``__next__`` (the C
task would then call ``__next__`` instead of ``send``), and the class is defined once per process
because asyncio caches coroutine types.

``send`` is the hottest code in loopviz: it runs once per task step. Its common case (a user
coroutine awaiting a library call such as ``asyncio.sleep``, nothing else to report) is written
out inline and costs one tuple; everything else goes through ``Tracer.step_done``.

When the optional C module is built, ``TracedCoroutine`` takes its ``send`` (and the ``am_send``
slot the C task calls) from ``_speedups.CoroProxy``, which does exactly what
``PyTracedCoroutine.send`` does here; the rare paths (``throw``, ``_describe``) are shared.
"""

from __future__ import annotations

import asyncio
import collections.abc
import logging
import time
from types import CoroutineType
from typing import Any

from loopviz.trace.core import speedups
from loopviz.trace.describe import LIBRARY_CALLS, argument, is_user_code, suspension
from loopviz.trace.records import (
    BEFORE_STEP,
    EXIT,
    FD_UNWATCH,
    FD_WATCH,
    STEP,
    YIELDED_FUTURE,
    YIELDED_NOTHING,
)
from loopviz.trace.tracer import Tracer

_monotonic = time.monotonic
_Future = asyncio.Future
log = logging.getLogger("loopviz.trace")


class _ProxyMethods:
    """What both proxies share: the rare paths, written once."""

    __slots__ = ()
    _coro: Any
    _tracer: Tracer
    task_id: int

    def _throw_done(self, yielded: Any, started: float) -> None:
        """After a ``throw`` the coroutine caught and went on from: the step's end."""
        ended = _monotonic()
        code, lasti, await_code, await_arg = self._describe()
        self._tracer.step_done(
            self.task_id, started, ended, code, lasti, await_code, await_arg, yielded
        )

    def _send_nested(self, value: Any) -> Any:
        """A step that begins inside another (an eager task's first step, run by asyncio
        inside ``create_task``): recorded nested in the step that runs it, after the spawn."""
        tracer = self._tracer
        saved = tracer.enter_nested_step(self)
        try:
            return self.send(value)
        finally:
            tracer.leave_nested_step(saved)

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

    @property
    def wrapped(self) -> Any:
        """The user's own coroutine object."""
        return self._coro

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        """The user's coroutine's class, as transparent proxies do (``wrapt``): so
        ``isinstance(task.get_coro(), types.CoroutineType)`` and ``inspect.iscoroutine`` hold,
        as on a stock loop; ``type()`` still tells the proxy."""
        return type(self._coro)

    def __repr__(self) -> str:
        return repr(self._coro)


class PyTracedCoroutine(_ProxyMethods, collections.abc.Coroutine):  # type: ignore[type-arg]
    """Wraps the coroutine of one task; forwards everything, recording step boundaries.

    ``code`` is the coroutine's code object when it is the user's own native coroutine (the
    inline description applies), else None.
    """

    __slots__ = ("_code", "_coro", "_tracer", "task_id")

    def __init__(self, coro: Any, tracer: Tracer, task_id: int, code: Any = None) -> None:
        self._coro = coro
        self._tracer = tracer
        self.task_id = task_id
        self._code = code

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """Rare (cancellation, errors), so it takes the general, slower bookkeeping path.
        (``CTracedCoroutine`` does it in C, so that no loopviz frame shows in tracebacks.)"""
        tracer = self._tracer
        tracer.current = task_id = self.task_id
        started = tracer.step_started = _monotonic()
        try:
            if val is None and tb is None:
                yielded = self._coro.throw(typ)
            else:  # pragma: no cover - the three-argument form is deprecated
                yielded = self._coro.throw(typ, val, tb)
        except BaseException as exc:
            tracer.step_failed(task_id, exc, started, self)
            raise
        self._throw_done(yielded, started)
        return yielded

    def send(self, value: Any) -> Any:
        tracer = self._tracer
        if tracer.current is not None or tracer.pending_spawn is not None:
            return self._send_nested(value)
        tracer.current = task_id = self.task_id
        started = tracer.step_started = _monotonic()
        try:
            yielded = self._coro.send(value)
        except BaseException as exc:
            tracer.step_failed(task_id, exc, started, self)
            raise
        ended = _monotonic()
        code = self._code
        await_code = await_arg = None
        if not tracer.details:
            code, lasti = None, -1
        elif code is not None:
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
            before_sent = tracer.before_sent
            if before_sent:
                tracer.before_sent = False
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
                    before_sent,
                )
            )
        return yielded

    def __getattr__(self, name: str) -> Any:
        """Introspection (``cr_frame``, ``__qualname__``...) reads the user's coroutine."""
        if name == "_coro":
            raise AttributeError(name)
        return getattr(self._coro, name)


if speedups is not None:
    speedups.configure(
        library_calls=LIBRARY_CALLS,
        is_user_code=is_user_code,
        future_type=_Future,
        argument=argument,
        current_task=asyncio.current_task,
        step=STEP,
        before_step=BEFORE_STEP,
        exit=EXIT,
        fd_watch=FD_WATCH,
        fd_unwatch=FD_UNWATCH,
        yielded_nothing=YIELDED_NOTHING,
        yielded_future=YIELDED_FUTURE,
    )

    class CTracedCoroutine(_ProxyMethods, speedups.CoroProxy, collections.abc.Coroutine):  # type: ignore[type-arg,misc,name-defined]
        """``PyTracedCoroutine`` with its step in C (``_speedups.c``); same records, less cost."""

        __slots__ = ()

    speedups.inherit_send(CTracedCoroutine)
    TracedCoroutine: type = CTracedCoroutine
else:
    TracedCoroutine = PyTracedCoroutine

#: Every proxy type (a proxy is never wrapped twice).
PROXY_TYPES = frozenset({TracedCoroutine, PyTracedCoroutine})
