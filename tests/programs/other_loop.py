"""A program that brings its own event loop class (as uvloop.run does): loopviz says so in one
line and runs it on the traced loop."""

import asyncio


class OtherLoop(asyncio.SelectorEventLoop):
    pass


async def main() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__name__


with asyncio.Runner(loop_factory=OtherLoop) as runner:
    print(runner.run(main()))
with asyncio.Runner(loop_factory=OtherLoop) as runner:
    print(runner.run(main()))
