"""sys.argv, __file__, __name__ and sys.path[0], as python gives them."""

import asyncio
import os
import sys


async def main() -> None:
    await asyncio.sleep(0)
    print("argv", sys.argv)
    print("name", __name__)
    print("file", os.path.basename(__file__), os.path.isabs(__file__))
    print("path0", os.path.basename(sys.path[0]))


if __name__ == "__main__":
    asyncio.run(main())
