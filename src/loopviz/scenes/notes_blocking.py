"""The notes' pair with the pause written as a blocking call, for the ``tasks`` scene.

``blocking``: each pause is ``time.sleep(0.25)``, then ``await asyncio.sleep(0)`` so the other
task still gets a turn at all: they alternate, but nothing overlaps any more. (The
``blocking-literal`` variant's pair is in ``notes_literal``.)

``time`` here is ``loopviz.scene_time``: 0.25 s of loop time at every speed.
"""

from __future__ import annotations

import asyncio

from loopviz import scene_time as time


async def print_numbers() -> None:
    for i in range(1, 27):
        print(i, "->", end=" ")
        time.sleep(0.25)  # blocks the loop thread: nothing else can run
        await asyncio.sleep(0)


async def print_alphabet() -> None:
    for i in range(26):
        print(chr(ord("a") + i))
        time.sleep(0.25)  # blocks the loop thread: nothing else can run
        await asyncio.sleep(0)
