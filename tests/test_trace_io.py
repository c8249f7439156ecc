"""Selector events: what the loop watches and what select says is ready."""

from __future__ import annotations

import asyncio
import socket

from loopviz.trace import EventStream, new_event_loop
from tracing import kinds, run_traced


def test_loopback_read_is_watched_for_r_then_reported_ready() -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        left, right = socket.socketpair()
        with left, right:
            left.setblocking(False)
            right.setblocking(False)
            loop.label_fd(left, "reader")
            loop.call_later(0.05, right.send, b"hello")
            data = await loop.sock_recv(left, 100)
            return data + bytes([left.fileno()])

    result, events = run_traced(main)
    data, fd = result[:-1], result[-1]
    assert data == b"hello"
    watch = next(e for e in kinds(events, "fd_watch") if e["fd"] == fd)
    assert (watch["events"], watch["label"]) == ("r", "reader")
    waits = kinds(events, "before_io_wait")
    watched = next(w for w in waits if any(f["fd"] == fd for f in w["fds"]))
    assert {"fd": fd, "events": "r", "label": "reader"} in watched["fds"]
    assert watched["timeout"] is not None and watched["timeout"] > 0  # the call_later timer
    ready = next(e for e in kinds(events, "after_io_wait") if e["ready_fds"])
    assert ready["ready_fds"] == [{"fd": fd, "events": "r", "label": "reader"}]
    assert ready["iteration"] > watched["iteration"]
    step = next(e for e in kinds(events, "after_task_step") if not e["done"])
    assert step["awaits"] == "sock_recv reader"
    assert (step["await_kind"], step["fd"], step["direction"]) == ("io", fd, "r")
    assert kinds(events, "fd_unwatch")[0]["fd"] == fd


def test_the_self_pipe_is_never_shown() -> None:
    loop = new_event_loop()
    stream = EventStream(loop)
    internal = loop._ssock.fileno()  # test-only peek at the self-pipe

    async def main() -> None:
        await asyncio.to_thread(sum, [1, 2])  # completes through call_soon_threadsafe
        loop.set_speed(2)

    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        runner.run(main())
    events = stream.read()
    for e in kinds(events, "before_io_wait"):
        assert all(f["fd"] != internal for f in e["fds"])
    for e in kinds(events, "after_io_wait"):
        assert all(f["fd"] != internal for f in e["ready_fds"])
    assert all(e["fd"] != internal for e in kinds(events, "fd_watch", "fd_unwatch"))


def test_write_interest_then_read_interest_for_a_stream_client() -> None:
    async def main() -> bytes:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping\n")
            line = await reader.readline()
            writer.close()
            await writer.wait_closed()
        return line

    result, events = run_traced(main)
    assert result == b"ping\n"
    assert kinds(events, "fd_watch")
    # Connecting watches the client fd for writability; answered reads show up as ready "r".
    assert any(e["events"] == "w" for e in kinds(events, "fd_watch"))
    assert any(f["events"] == "r" for e in kinds(events, "after_io_wait") for f in e["ready_fds"])


def test_buffer_overflow_drops_oldest_and_counts_them() -> None:
    async def main() -> None:
        for _ in range(200):
            await asyncio.sleep(0)

    loop = new_event_loop(capacity=64)
    stream = EventStream(loop)
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        runner.run(main())
    events = stream.read()
    assert len(events) <= 1 + 2 * 64  # one raw step record reads as before + after
    dropped = kinds(events, "events_dropped")
    assert len(dropped) == 1 and dropped[0]["count"] == stream.dropped > 200
    # After the gap the stream is intact, in order, and still on the loop's clock.
    tail = events[1:]
    assert [e.seq for e in tail] == list(range(tail[0].seq, tail[0].seq + len(tail)))
    assert all(0 <= e.t < 5 for e in events)
    assert loop.tracer.resync_requested or any(
        e.kind == "before_io_wait" for e in tail
    )  # the consumer asked the loop to repeat its fd map
