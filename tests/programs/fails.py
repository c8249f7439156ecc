"""A program that fails: a task raises, and asyncio.run passes the error on."""

import asyncio


async def broken() -> None:
    await asyncio.sleep(0)
    raise ValueError("the program's own error")


async def main() -> None:
    await asyncio.create_task(broken())


asyncio.run(main())
