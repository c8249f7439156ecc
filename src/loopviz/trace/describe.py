"""Where a suspended task stands: its innermost user frame and the library call it awaits.

Called on the hot path after every task step, so it walks the ``cr_await`` chain with plain
attribute reads and caches, per code object, whether the code is the user's or a library's.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import asyncio.queues
import asyncio.selector_events
import asyncio.tasks
import os
import sys
import sysconfig
from types import CodeType, CoroutineType, FrameType, GeneratorType
from typing import Any

_LOOP = asyncio.selector_events.BaseSelectorEventLoop

#: Library coroutines whose first interesting argument is worth recording, by code object.
ARGUMENT_OF: dict[CodeType, str] = {
    asyncio.tasks.sleep.__code__: "delay",
    _LOOP.sock_recv.__code__: "sock",
    _LOOP.sock_recv_into.__code__: "sock",
    _LOOP.sock_sendall.__code__: "sock",
    _LOOP.sock_connect.__code__: "sock",
    _LOOP.sock_accept.__code__: "sock",
}


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _library_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"]}
    roots.add(os.path.dirname(asyncio.__file__))
    roots.add(_PACKAGE)  # loopviz itself: its runner and tracer are machinery, not the lesson
    roots.update(p for p in sys.path if p.endswith("site-packages"))
    return tuple(sorted(os.path.join(os.path.abspath(r), "") for r in roots if r))


_LIBRARY = _library_prefixes()
# Built-in scenes are user code even when loopviz is installed in site-packages.
_SCENES = os.path.join(_PACKAGE, "scenes", "")
_USER_CODE: dict[CodeType, bool] = {}
#: Library coroutines seen so far -> the argument worth recording ("" for none). Read on the
#: hot path: a code object found here is a library call, and needs no further walk.
LIBRARY_CALLS: dict[CodeType, str] = {}


def is_user_code(code: CodeType) -> bool:
    """True for code the user wrote (or a built-in scene), False for asyncio and libraries."""
    known = _USER_CODE.get(code)
    if known is not None:
        return known
    filename = code.co_filename
    if filename.startswith("<"):
        user = True
    else:
        path = os.path.abspath(filename)
        user = path.startswith(_SCENES) or not path.startswith(_LIBRARY)
    _USER_CODE[code] = user
    if not user:
        LIBRARY_CALLS[code] = ARGUMENT_OF.get(code, "")
    return user


def _frame_of(obj: Any) -> FrameType | None:
    kind = type(obj)
    if kind is CoroutineType:
        return obj.cr_frame
    if kind is GeneratorType:
        return obj.gi_frame
    return None


def _awaited_by(obj: Any) -> Any:
    if type(obj) is CoroutineType:
        return obj.cr_await
    return obj.gi_yieldfrom


def suspension(coro: Any) -> tuple[CodeType | None, int, CodeType | None, Any]:
    """``(user_code, user_lasti, awaited_code, awaited_arg)`` for a coroutine that just yielded.

    The innermost frame of the user's code is where the task stands (``f_lasti``; the decoder
    turns it into a line number), and the first library coroutine below it is what it awaits.
    """
    user_code: CodeType | None = None
    user_line = -1
    obj = coro
    frame = _frame_of(obj)
    while frame is not None:
        code = frame.f_code
        if not is_user_code(code):
            name = ARGUMENT_OF.get(code)
            return user_code, user_line, code, (_argument(frame, name) if name else None)
        user_code, user_line = code, frame.f_lasti
        obj = _awaited_by(obj)
        frame = _frame_of(obj)
    return user_code, user_line, None, None


def argument(frame: FrameType | None, name: str) -> Any:
    """The interesting argument of an awaited library call (a sleep's delay, a socket's fd)."""
    if frame is None:
        return None
    return _argument(frame, name)


def _argument(frame: FrameType, name: str) -> Any:
    value = frame.f_locals.get(name)
    if name == "sock":
        try:
            return value.fileno()  # type: ignore[union-attr]
        except (AttributeError, OSError):
            return None
    return value if isinstance(value, int | float) else None


#: Where a callback's stack begins: frames further out are the loop's own machinery (and the
#: code that started the loop), never the place a callback or task step called from.
CALLBACK_ENTRY = asyncio.events.Handle._run.__code__


def user_site(frame: FrameType | None) -> tuple[CodeType | None, int]:
    """``(code, lasti)`` of the innermost user frame at or outside ``frame``, within the running
    callback or task step: where the user's code called in. ``line_of`` gives the line later
    (computing a line number is far slower than reading ``f_lasti``)."""
    known = _USER_CODE
    while frame is not None:
        code = frame.f_code
        if code is CALLBACK_ENTRY:
            break
        user = known.get(code)
        if user is None:
            user = is_user_code(code)
        if user:
            return code, frame.f_lasti
        frame = frame.f_back
    return None, -1


def line_of(code: CodeType | None, lasti: int) -> int:
    """The source line of instruction offset ``lasti`` in ``code`` (0 when unknown)."""
    if code is None or lasti < 0:
        return 0
    for start, end, line in code.co_lines():
        if start <= lasti < end and line is not None:
            return line
    return code.co_firstlineno
