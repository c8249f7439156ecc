"""The notes' program with nothing changed but ``await asyncio.sleep(0.25)`` written as
``time.sleep(0.25)``, for the ``tasks`` scene's ``blocking-literal`` variant: no ``await`` is
left, so each task runs all 26 items in one step. Async code that blocks is synchronous code.

``time`` here is ``loopviz.scene_time``: 0.25 s of loop time at every speed.
"""

from __future__ import annotations

from loopviz import scene_time as time


async def print_numbers() -> None:
    for i in range(1, 27):
        print(i, "->", end=" ")
        time.sleep(0.25)  # was: await asyncio.sleep(0.25)


async def print_alphabet() -> None:
    for i in range(26):
        print(chr(ord("a") + i))
        time.sleep(0.25)  # was: await asyncio.sleep(0.25)
