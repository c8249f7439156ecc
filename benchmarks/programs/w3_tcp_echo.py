"""W3 as a program: 200 concurrent TCP echo round trips on 127.0.0.1, ten times over (the
workload of ``tracer_overhead.py``'s W3, as a whole process of its own)."""

import asyncio

ROUNDS = 10


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def main() -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", 0, backlog=512)
    port = server.sockets[0].getsockname()[1]

    async def client(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"round trip %d\n" % i)
        await writer.drain()
        await reader.readline()
        writer.close()
        await writer.wait_closed()

    async with server:
        for _ in range(ROUNDS):
            await asyncio.gather(*(client(i) for i in range(200)))


asyncio.run(main())
