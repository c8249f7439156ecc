"""W1 as a program: 1,000 tasks, each awaiting asyncio.sleep(0) 100 times."""

import asyncio


async def worker() -> None:
    for _ in range(100):
        await asyncio.sleep(0)


async def main() -> None:
    await asyncio.gather(*(worker() for _ in range(1000)))


asyncio.run(main())
