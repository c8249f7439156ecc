"""Nothing but an empty asyncio.run: what starting a process costs."""

import asyncio


async def main() -> None:
    return None


asyncio.run(main())
