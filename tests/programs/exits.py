"""sys.exit with a status, and what it prints first."""

import asyncio
import sys


async def main() -> int:
    await asyncio.sleep(0)
    print("about to exit with 3")
    return 3


sys.exit(asyncio.run(main()))
