"""Two loops at once, each in a thread of its own, and the main thread's own."""

import asyncio
import threading

results: dict[str, int] = {}


async def work(name: str) -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)
    results[name] = len(asyncio.all_tasks())


def in_thread(name: str) -> None:
    asyncio.run(work(name))


threads = [threading.Thread(target=in_thread, args=(f"thread {i}",)) for i in (1, 2)]
for thread in threads:
    thread.start()
asyncio.run(work("main"))
for thread in threads:
    thread.join()
print(sorted(results.items()))
