"""``time`` as the built-in scenes' copies of the notes see it: ``time.sleep(0.25)`` blocks the
loop thread for 0.25 s of *loop* time (``0.25 / speed`` wall seconds).

Real ``time.sleep`` is not dilated, so a blocking lesson would look different at every speed;
the scenes import this module as ``time`` so that the line on screen (and in ``loop_stalled``)
is the notes' own ``time.sleep(0.25)``. It lives outside ``loopviz.scenes`` on purpose: the
stall sampler names the innermost *user* frame, which must be the scene's line, not this one.
Once the scenes are being stopped (``stop_blocking``), it returns at once so that cancellation
gets through.
"""

from __future__ import annotations

import asyncio
import time
import weakref

_STOPPING: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def sleep(seconds: float) -> None:
    """Block the running loop's thread for ``seconds`` of its loop time."""
    loop = asyncio.get_running_loop()
    if loop in _STOPPING:
        return
    time.sleep(seconds / getattr(loop, "speed", 1.0))


def stop_blocking(loop: asyncio.AbstractEventLoop) -> None:
    """From now on ``sleep`` on ``loop`` returns at once (the scenes are being stopped)."""
    _STOPPING.add(loop)
