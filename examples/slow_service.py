"""A small service with a blocking call hidden in one handler, and clients that keep using it.

    loopviz run examples/slow_service.py

Three kinds of request reach a line-based TCP server on 127.0.0.1: ``price`` and ``stock``
answer at once; ``report`` calls ``render_report``, which looks harmless and calls
``time.sleep`` (think of a synchronous database driver or an HTTP library that blocks). While it
runs, no other request is served: watch the loop bar say FROZEN and the stalls count grow, and
see every other client wait. Runs until interrupted (q in the dashboard, Ctrl+C headless).
"""

from __future__ import annotations

import asyncio
import itertools
import time

HOST = "127.0.0.1"


def render_report(name: str) -> str:
    """Looks like any helper; blocks the whole loop for 0.3 s."""
    time.sleep(0.3)  # the hidden blocking call: should be await asyncio.sleep / to_thread
    return f"report for {name}: ok"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        kind, _, name = line.decode().strip().partition(" ")
        if kind == "report":
            answer = render_report(name)
        else:
            await asyncio.sleep(0.01)  # a quick, well-behaved lookup
            answer = f"{kind} of {name}: 42"
        writer.write(answer.encode() + b"\n")
        await writer.drain()
    writer.close()


async def client(port: int, kind: str, every: float) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    for number in itertools.count(1):
        started = asyncio.get_running_loop().time()
        writer.write(f"{kind} item{number}\n".encode())
        await writer.drain()
        answer = (await reader.readline()).decode().strip()
        took = asyncio.get_running_loop().time() - started
        print(f"{kind:6} #{number}: {answer} ({took * 1000:.0f} ms)")
        await asyncio.sleep(every)


async def main() -> None:
    server = await asyncio.start_server(handle, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    async with server, asyncio.TaskGroup() as group:
        group.create_task(client(port, "price", 0.2), name="price client")
        group.create_task(client(port, "stock", 0.3), name="stock client")
        group.create_task(client(port, "report", 1.5), name="report client")


if __name__ == "__main__":
    asyncio.run(main())
