"""asyncio.run called again and again, and asyncio.Runner, and a loop made by hand."""

import asyncio


async def count(n: int) -> int:
    total = 0
    for i in range(n):
        await asyncio.sleep(0)
        total += i
    return total


for n in (3, 4, 5):
    print("run", n, asyncio.run(count(n)))
with asyncio.Runner() as runner:
    print("runner", runner.run(count(6)))
loop = asyncio.new_event_loop()
try:
    print("by hand", loop.run_until_complete(count(7)))
finally:
    loop.close()
