"""Scene ``tasks``: who runs, who waits.

The two coroutines are the classic pair from the course notes: ``print_numbers`` prints 1..26 and
``print_alphabet`` prints a..z, each pausing 0.25 s after every item.

Variants:

``async``
    Both run as tasks (``asyncio.create_task``); every ``await asyncio.sleep(0.25)`` hands control
    back to the loop, which runs the other one. Output interleaves ``1 -> a``, ``2 -> b``... and
    the whole run takes about 6.5 s of loop time (26 x 0.25 s).
``sync``
    The same two functions awaited one after the other: all numbers, then all letters, about
    13 s of loop time (52 x 0.25 s). Nothing else is waiting, so nothing interleaves.
``compare``
    ``async`` and ``sync`` side by side on one loop (two task groups), so one run shows 6.5 s
    against 13 s.
``blocking``
    The same, but each pause is ``time.sleep(0.25)``: the loop thread itself sleeps, so the loop
    is frozen during every call, each call is a ``loop_stalled`` event, and the other task gets no
    turn until the sleeper returns. After each call the coroutine still awaits
    ``asyncio.sleep(0)`` so that the other task can have its turn at all: the two still alternate,
    but nothing overlaps any more, and the run takes 13 s, as long as ``sync``.
``blocking-literal``
    The notes' program with nothing changed but ``await asyncio.sleep(0.25)`` written as
    ``time.sleep(0.25)``: with no ``await`` left, each task runs all 26 items in one step,
    ``print_numbers`` first, then ``print_alphabet`` (two stalls of 6.5 s). Exactly the output and
    the 13 s of ``sync``: async code that blocks is synchronous code.

The blocking variants' coroutines are in ``notes_blocking`` and ``notes_literal``, named as in
the notes (``print_numbers``, ``print_alphabet``); their ``time.sleep(0.25)`` is 0.25 s of
*loop* time at every speed (``loopviz.scene_time``), so the lesson looks the same at 0.1x and
at 20x.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from loopviz import scene_time
from loopviz.scenes import notes_blocking, notes_literal
from loopviz.scenes.base import Scene


async def print_numbers() -> None:
    for i in range(1, 27):
        print(i, "->", end=" ")
        await asyncio.sleep(0.25)


async def print_alphabet() -> None:
    for i in range(26):
        print(chr(ord("a") + i))
        await asyncio.sleep(0.25)


class TasksScene(Scene):
    name = "tasks"
    title = "Tasks yielding control"
    variants: ClassVar[tuple[str, ...]] = (
        "async",
        "sync",
        "compare",
        "blocking",
        "blocking-literal",
    )

    def interrupt(self) -> None:
        """Stopping: the blocking variants stop blocking, so cancellation gets through."""
        scene_time.stop_blocking(self.loop)

    async def run(self) -> None:
        if self.variant == "async":
            await self.run_async()
        elif self.variant == "sync":
            await self.run_sync()
        elif self.variant == "compare":
            async with asyncio.TaskGroup() as both:
                both.create_task(self.run_async(), name="async group")
                both.create_task(self.run_sync(), name="sync group")
        elif self.variant == "blocking":
            await self.run_blocking()
        else:
            await self.run_blocking_literal()

    async def run_async(self) -> None:
        started = asyncio.get_running_loop().time()
        task1 = asyncio.create_task(print_numbers(), name="print_numbers")
        # As in the notes, the second task is not awaited; its pending timer keeps it alive.
        asyncio.create_task(print_alphabet(), name="print_alphabet")  # noqa: RUF006
        await task1
        self.emit(
            "scene.finished", variant="async", took=asyncio.get_running_loop().time() - started
        )

    async def run_sync(self) -> None:
        started = asyncio.get_running_loop().time()
        await print_numbers()
        await print_alphabet()
        self.emit(
            "scene.finished", variant="sync", took=asyncio.get_running_loop().time() - started
        )

    async def run_blocking(self) -> None:
        started = asyncio.get_running_loop().time()
        task1 = asyncio.create_task(notes_blocking.print_numbers(), name="print_numbers")
        asyncio.create_task(notes_blocking.print_alphabet(), name="print_alphabet")  # noqa: RUF006
        await task1
        self.emit(
            "scene.finished", variant="blocking", took=asyncio.get_running_loop().time() - started
        )

    async def run_blocking_literal(self) -> None:
        started = asyncio.get_running_loop().time()
        task1 = asyncio.create_task(notes_literal.print_numbers(), name="print_numbers")
        asyncio.create_task(notes_literal.print_alphabet(), name="print_alphabet")  # noqa: RUF006
        await task1
        self.emit(
            "scene.finished",
            variant="blocking-literal",
            took=asyncio.get_running_loop().time() - started,
        )
