"""The sockets scene's line server: it answers each line it receives, after a delay.

The delay gives the client something to wait for. There are two ways to run the same server,
because a blocking client cannot share a loop with its server:

``ThreadedLineServer``
    Plain blocking sockets in a thread of its own. A blocking client on the traced loop freezes
    that loop, so a server on it could never answer (deadlock). Real time is not dilated, so the
    thread waits ``delay / speed`` wall seconds, reading the speed when the line arrives:
    ``delay`` seconds of *loop* time at every speed, and the lesson looks the same at 0.1x and 20x.
``LoopLineServer``
    Tasks on the traced loop (``sock_accept``/``sock_recv``/``sock_sendall``): its fds show up in
    the loop's own ``before_io_wait``, and its delay is an ordinary loop timer.

Both bind 127.0.0.1 to a port the OS chooses, label every fd before anything can watch it, and
close every socket they open, also when cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopviz.scenes.base import Scene

HOST = "127.0.0.1"
RECV_SIZE = 1024
#: How often (wall seconds) the server thread looks at its stop flag while it waits for I/O.
POLL = 0.02

Address = tuple[str, int]


def listen_socket(scene: Scene, label: str = "server listen") -> socket.socket:
    """A TCP socket listening on 127.0.0.1 at a port the OS picks; labelled before it is used."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    scene.label_fd(sock, label)
    try:
        sock.bind((HOST, 0))
        sock.listen()
    except BaseException:
        sock.close()
        raise
    return sock


def announce_listening(scene: Scene, listen: socket.socket, runs_on: str, delay: float) -> Address:
    """Emit ``sockets.listening`` for a bound listening socket; return its address."""
    host, port = listen.getsockname()
    server_event(
        scene,
        "sockets.listening",
        listen.fileno(),
        "server listen",
        host=host,
        port=port,
        runs_on=runs_on,
        delay=delay,
    )
    return host, port


def announce_answer(
    scene: Scene,
    fd: int,
    label: str,
    conn: int,
    line: bytes,
    delay: float,
    wall_delay: float | None,
) -> None:
    """Emit ``sockets.answering``: said before sending, since the client's ``received`` can
    come from another thread and must not appear first."""
    server_event(
        scene,
        "sockets.answering",
        fd,
        label,
        conn=conn,
        bytes=len(line) + 1,
        delay=delay,
        wall_delay=None if wall_delay is None else round(wall_delay, 6),
    )


def fd_fields(fd: int, label: str) -> dict[str, Any]:
    return {"fd": fd, "label": label}


def server_event(scene: Scene, kind: str, fd: int, label: str, **fields: Any) -> None:
    """A server-side milestone: ``side="server"``, the fd and its label, then ``fields``."""
    scene.emit(kind, side="server", **fd_fields(fd, label), **fields)


class AwaitableThread:
    """A named thread whose end a task can await without blocking the loop.

    If the awaiting task is cancelled, ``stop`` asks the thread to finish and the task still
    waits for it, so nothing the thread owns outlives the scene.
    """

    def __init__(self, name: str, target: Callable[[], None], stop: Callable[[], None]) -> None:
        self._target = target
        self._stop = stop
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._loop = asyncio.get_running_loop()
        self.finished: asyncio.Future[None] = self._loop.create_future()

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        error: BaseException | None = None
        try:
            self._target()
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._settle, error)

    def _settle(self, error: BaseException | None) -> None:
        if self.finished.done():
            return
        if error is None:
            self.finished.set_result(None)
        else:
            self.finished.set_exception(error)

    async def join(self) -> None:
        """Wait for the thread to end; re-raise what it raised."""
        try:
            await asyncio.wait([self.finished])
        except asyncio.CancelledError:
            self._stop()
            await asyncio.wait([self.finished])
            raise
        finally:
            if self.finished.done():
                self._thread.join()
        self.finished.result()


class ThreadedLineServer:
    """The line server in its own thread, for the blocking client (one connection at a time)."""

    def __init__(self, scene: Scene, delay: float) -> None:
        self.scene = scene
        self.delay = delay
        self._stop = threading.Event()
        self._listen: socket.socket | None = None
        self._thread: AwaitableThread | None = None

    async def __aenter__(self) -> Address:
        listen = self._listen = listen_socket(self.scene)
        listen.settimeout(POLL)  # accept() wakes up to look at the stop flag
        host, port = announce_listening(self.scene, listen, "thread", self.delay)
        self._thread = AwaitableThread("sockets line server", self._serve, self._stop.set)
        self._thread.start()
        return host, port

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            await self._thread.join()

    def stop(self) -> None:
        """Hang up now (safe from any thread): a client blocked in ``recv`` gets EOF at once."""
        self._stop.set()

    def _serve(self) -> None:
        """Thread body: accept connections one after the other; it owns and closes every socket."""
        assert self._listen is not None
        listen = self._listen
        try:
            number = 0
            while not self._stop.is_set():
                try:
                    conn, _peer = listen.accept()
                except TimeoutError:
                    continue
                number += 1
                self._talk(conn, number)
        finally:
            listen.close()

    def _talk(self, conn: socket.socket, number: int) -> None:
        label = f"server conn#{number}"
        self.scene.label_fd(conn, label)
        fd = conn.fileno()
        server_event(self.scene, "sockets.accepted", fd, label, conn=number)
        try:
            conn.settimeout(POLL)
            pending = b""
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(RECV_SIZE)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                pending += chunk
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    wall_delay = self.delay / self.scene.speed  # real time is not dilated
                    if self._stop.wait(wall_delay):
                        return
                    announce_answer(self.scene, fd, label, number, line, self.delay, wall_delay)
                    conn.sendall(line + b"\n")
        except ConnectionError:
            pass  # the client went away; nothing to answer
        finally:
            conn.close()
            server_event(self.scene, "sockets.closed", fd, label, conn=number)


class LoopLineServer:
    """The line server as tasks on the traced loop, for clients that never block the loop."""

    def __init__(self, scene: Scene, delay: float) -> None:
        self.scene = scene
        self.delay = delay
        self._listen: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Address:
        listen = self._listen = listen_socket(self.scene)
        listen.setblocking(False)
        host, port = announce_listening(self.scene, listen, "loop", self.delay)
        self._task = asyncio.create_task(self._serve(listen), name="server accept")
        return host, port

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task = self._task
        try:
            if task is not None:
                task.cancel()
                await asyncio.wait([task])
        finally:
            if self._listen is not None:
                self._listen.close()
        if task is not None and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    async def _serve(self, listen: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as conversations:
            number = 0
            while True:
                conn, _peer = await loop.sock_accept(listen)  # the loop watches "server listen"
                number += 1
                label = f"server conn#{number}"
                self.scene.label_fd(conn, label)
                server_event(self.scene, "sockets.accepted", conn.fileno(), label, conn=number)
                conversations.create_task(self._talk(conn, number, label), name=label)

    async def _talk(self, conn: socket.socket, number: int, label: str) -> None:
        loop = asyncio.get_running_loop()
        fd = conn.fileno()
        try:
            pending = b""
            while True:
                chunk = await loop.sock_recv(conn, RECV_SIZE)
                if not chunk:
                    break
                pending += chunk
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    await asyncio.sleep(self.delay)
                    announce_answer(self.scene, fd, label, number, line, self.delay, None)
                    await loop.sock_sendall(conn, line + b"\n")
        except ConnectionError:
            pass  # the client went away; nothing to answer
        finally:
            conn.close()
            server_event(self.scene, "sockets.closed", fd, label, conn=number)
