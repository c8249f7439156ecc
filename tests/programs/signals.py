"""Signal handlers: loop.add_signal_handler on the main thread, and signal.signal."""

import asyncio
import os
import signal

seen = []


def plain_handler(number: int, frame: object) -> None:
    seen.append(signal.Signals(number).name)


async def main() -> None:
    loop = asyncio.get_running_loop()
    got = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, got.set)
    os.kill(os.getpid(), signal.SIGUSR1)
    await asyncio.wait_for(got.wait(), 5)
    print("add_signal_handler: SIGUSR1 arrived")
    loop.remove_signal_handler(signal.SIGUSR1)


signal.signal(signal.SIGUSR2, plain_handler)
asyncio.run(main())
os.kill(os.getpid(), signal.SIGUSR2)
print("signal.signal saw", seen)
