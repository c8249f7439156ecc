"""Run with -m pkg.app: relative imports work as under python -m."""

import asyncio
import sys

from .helper import GREETING


async def main() -> None:
    await asyncio.sleep(0)
    print(GREETING, sys.argv[1:], __name__)


asyncio.run(main())
