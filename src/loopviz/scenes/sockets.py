"""Scene ``sockets``: blocking versus select-driven I/O.

A client asks a small line server (``line_server``) for an answer that takes ``delay`` seconds of
loop time (1.25 by default), ``rounds`` times (3), on a new connection each round, with 0.5 s
pauses between. A ``ticker`` task ticks every 0.25 s throughout, so a frozen loop shows as a gap
in the ticks. Everything is on 127.0.0.1, on ports the OS picks.

Variants (the default comes first):

``nonblocking``
    The client is a task driving a non-blocking socket with ``loop.sock_connect``/
    ``sock_sendall``/``sock_recv``: the loop watches ``client#N`` for ``w`` until it is connected,
    then for ``r`` until the answer comes, and runs the ticker meanwhile. The server runs on the
    same loop. The default, because it is the idiom to learn and it can share a loop with other
    scenes without freezing them.
``blocking``
    The client is the notes' ``create_blocking``: a plain blocking socket in a coroutine. ``recv``
    holds the loop thread until the answer comes: a ``loop_stalled`` event naming the ``recv``
    line, and no tick until it returns. Its server runs in a thread (a server on the frozen loop
    could never answer); since real time is not dilated, that thread waits ``delay / speed`` wall
    seconds, so the stall is ``delay`` seconds of loop time at every speed.
``select``
    The client is the notes' ``create_nonblocking`` hand-written loop around
    ``select.select(inputs, outputs, inputs, 0.5)``, in a worker thread, against the server on the
    traced loop: the raw mechanism next to asyncio's own selector serving the other end (its
    timeout set by the server's delay timer). ``client#N`` is never on the loop's selector. Every
    call is recorded (``select.call``, ``select.returned``), and the notes' own log lines
    (``Non Blocking - waiting``...) are ``output`` events of the thread. The 0.5 s timeout is
    loop time: the thread's ``select`` waits on the loop's clock (``0.5 / speed`` wall seconds
    running, still while the loop is held, jumped with it when stepping), so the count of empty
    returns is the same at every speed and stepped. While the loop is paused, each step the
    class takes lets the thread make one ``select`` call (``StepGate.follow``).

Options: ``delay`` (loop seconds the server takes to answer, > 0), ``rounds`` (requests, >= 1).
Event fields are documented in ``docs/events-sockets.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import threading
import time
from typing import Any, ClassVar

from loopviz.scenes.base import Scene, SceneError
from loopviz.scenes.line_server import (
    RECV_SIZE,
    Address,
    AwaitableThread,
    LoopLineServer,
    ThreadedLineServer,
    fd_fields,
)
from loopviz.trace import TracedEventLoop

REQUEST = b"hello\r\n"
TICK = 0.25
PAUSE = 0.5
SELECT_TIMEOUT = 0.5
#: Wall seconds the select variant's thread waits at most before looking at the loop's clock.
LOOK_AGAIN = 0.02
#: Between two 0.5 s select timeouts, 0.25 s clear of each: the select variant's story (two
#: timeouts, then readable) never hangs on which of two things due at once comes first.
DEFAULT_DELAY = 1.25
DEFAULT_ROUNDS = 3


class SocketsScene(Scene):
    name = "sockets"
    title = "Blocking versus select-driven I/O"
    variants: ClassVar[tuple[str, ...]] = ("nonblocking", "blocking", "select")
    default_duration: ClassVar[float | None] = None  # ends by itself after ``rounds`` requests

    def __init__(self, loop: TracedEventLoop, variant: str | None = None, **options: Any) -> None:
        super().__init__(loop, variant, **options)
        unknown = sorted(set(options) - {"delay", "rounds"})
        if unknown:
            raise SceneError(f"sockets has no option {unknown[0]!r}; options: delay, rounds")
        self.delay = _number(options.get("delay", DEFAULT_DELAY), "delay", float, minimum=0.0)
        self.rounds = _number(options.get("rounds", DEFAULT_ROUNDS), "rounds", int, minimum=1)
        self._threaded_server: ThreadedLineServer | None = None

    def interrupt(self) -> None:
        """Stopping: the threaded server hangs up, so a blocking ``recv`` returns at once."""
        server = self._threaded_server
        if server is not None:
            server.stop()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        server = (
            ThreadedLineServer(self, self.delay)
            if self.variant == "blocking"
            else LoopLineServer(self, self.delay)
        )
        if isinstance(server, ThreadedLineServer):
            self._threaded_server = server
        async with server as address:
            ticker = asyncio.create_task(self.ticker(), name="ticker")
            try:
                client = {
                    "nonblocking": self.nonblocking_client,
                    "blocking": self.blocking_client,
                    "select": self.select_client,
                }[self.variant]
                await asyncio.create_task(client(address), name=f"{self.variant} client")
            finally:
                ticker.cancel()
                await asyncio.wait([ticker])
        self.emit("scene.finished", variant=self.variant, took=loop.time() - started)

    async def ticker(self) -> None:
        """Tick every 0.25 s of loop time; ``gap`` is how long it really was since the last tick."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        number = 0
        while True:
            await asyncio.sleep(TICK)
            now = loop.time()
            number += 1
            print(f"tick {number}")
            self.emit("sockets.tick", n=number, gap=round(now - last, 6))
            last = now

    def client_event(self, kind: str, number: int, fd: int, **fields: Any) -> None:
        """A client milestone: ``side="client"``, fd, label, round and variant, then ``fields``."""
        mine = {"side": "client", **fd_fields(fd, f"client#{number}"), "round": number}
        self.emit(kind, **mine, mode=self.variant, **fields)

    # -- nonblocking: readiness on the traced loop ------------------------------------------------

    async def nonblocking_client(self, address: Address) -> None:
        for number in range(1, self.rounds + 1):
            await asyncio.sleep(PAUSE)
            await self.nonblocking_round(number, address)
        await asyncio.sleep(PAUSE)

    async def nonblocking_round(self, number: int, address: Address) -> None:
        """One request on a non-blocking socket: every wait is the loop's select, not ours."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.label_fd(sock, f"client#{number}")
        fd = sock.fileno()
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)  # the loop watches client#N for "w"
            self.client_event("sockets.connected", number, fd, port=address[1])
            await loop.sock_sendall(sock, REQUEST)
            sent_at = loop.time()
            self.client_event("sockets.sent", number, fd, bytes=len(REQUEST))
            data = await loop.sock_recv(sock, RECV_SIZE)  # the loop watches client#N for "r"
            waited = round(loop.time() - sent_at, 6)
            self.client_event("sockets.received", number, fd, bytes=len(data), waited=waited)
        finally:
            sock.close()
            self.client_event("sockets.closed", number, fd)

    # -- blocking: the notes' create_blocking, inside a coroutine ---------------------------------

    async def blocking_client(self, address: Address) -> None:
        for number in range(1, self.rounds + 1):
            await asyncio.sleep(PAUSE)
            self.blocking_round(number, address)
        await asyncio.sleep(PAUSE)

    def blocking_round(self, number: int, address: Address) -> None:
        """One request on a plain blocking socket: the loop thread itself waits in ``recv``."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.label_fd(sock, f"client#{number}")
        fd = sock.fileno()
        try:
            sock.connect(address)
            self.client_event("sockets.connected", number, fd, port=address[1])
            sent = sock.send(REQUEST)
            sent_at = loop.time()
            self.client_event("sockets.sent", number, fd, bytes=sent)
            data = sock.recv(RECV_SIZE)  # blocks the loop thread: no task, no timer, no tick
            waited = round(loop.time() - sent_at, 6)
            self.client_event("sockets.received", number, fd, bytes=len(data), waited=waited)
        finally:
            sock.close()
            self.client_event("sockets.closed", number, fd)

    # -- select: the notes' create_nonblocking, in a worker thread --------------------------------

    async def select_client(self, address: Address) -> None:
        for number in range(1, self.rounds + 1):
            await asyncio.sleep(PAUSE)
            client = SelectClient(self, number, address)
            worker = AwaitableThread(f"sockets select client#{number}", client.run, client.stop)
            worker.start()
            await worker.join()
        await asyncio.sleep(PAUSE)


class SelectClient:
    """One round of the notes' ``create_nonblocking``, run in a worker thread.

    The loop is the notes' own, with ``select.select`` wrapped to record each call's three lists
    in and out. ``stop`` (from the loop thread, on cancellation) shuts the socket down, which
    makes the pending ``select`` return it readable at once.
    """

    def __init__(self, scene: SocketsScene, number: int, address: Address) -> None:
        self.scene = scene
        self.number = number
        self.address = address
        self.calls = 0
        self._labels: dict[int, str] = {}
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        #: The loop's steps this thread has moved with (``StepGate.follow``): made during a
        #: step the class asked for, the thread's first call goes with that step; made while
        #: the loop runs, a pause before that call holds it. Until the thread is waiting
        #: somewhere, a stepped jump of the loop's clock waits for it.
        gate = scene.loop.gate
        self._steps_seen = gate.steps_taken - (1 if gate.paused else 0)
        gate.follower_busy(self.thread_name)

    def run(self) -> None:
        self.log("creating socket")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        label = f"client#{self.number}"
        self.scene.label_fd(sock, label)
        fd = sock.fileno()
        self._labels[fd] = label
        with self._lock:
            self._sock = sock
        try:
            if not self._stopping.is_set():
                self.talk(sock, fd)
        except OSError:
            if not self._stopping.is_set():
                raise
        finally:
            self.close(sock, fd)
            self.scene.loop.gate.follower_gone(self.thread_name)

    def talk(self, sock: socket.socket, fd: int) -> None:
        """The notes' loop, line for line: send when writable, read when readable, close."""
        self.log("connecting")
        result = sock.connect_ex(self.address)  # a blocking connect, as in the notes
        if result != 0:
            self.log("failed to connect")
            self.scene.client_event("sockets.connect_failed", self.number, fd, errno=result)
            return
        self.log("connected")
        self.scene.client_event("sockets.connected", self.number, fd, port=self.address[1])
        if self._stopping.is_set():
            return
        sock.setblocking(False)
        inputs = [sock]
        outputs = [sock]
        sent_at = None
        while inputs:
            self.log("waiting")
            readable, writable, exceptional = self.select(inputs, outputs, inputs, SELECT_TIMEOUT)
            for s in writable:
                self.log("sending")
                sent = s.send(REQUEST)
                self.log(f"sent: {sent}")
                sent_at = self.scene.loop.time()
                self.scene.client_event("sockets.sent", self.number, fd, bytes=sent)
                outputs.remove(s)
            for s in readable:
                self.log("reading")
                data = s.recv(RECV_SIZE)
                self.log(f"data: {len(data)}")
                waited = None if sent_at is None else round(self.scene.loop.time() - sent_at, 6)
                self.scene.client_event(
                    "sockets.received", self.number, fd, bytes=len(data), waited=waited
                )
                self.log("closing")
                self.close(s, fd)
                inputs.remove(s)
                break
            for s in exceptional:
                if s not in inputs:
                    break  # already read and closed above
                self.log("error")
                self.scene.client_event("sockets.error", self.number, fd)
                inputs.remove(s)
                if s in outputs:
                    outputs.remove(s)
                self.close(s, fd)
                break

    def log(self, message: str) -> None:
        """The notes' ``logging.info('Non Blocking - ...')``, as an output line of this thread."""
        self.scene.loop.print_from_thread(f"Non Blocking - {message}\n", self.thread_name)

    @property
    def thread_name(self) -> str:
        return f"client#{self.number} thread"

    def select(
        self,
        inputs: list[socket.socket],
        outputs: list[socket.socket],
        errors: list[socket.socket],
        timeout: float,
    ) -> tuple[list[socket.socket], list[socket.socket], list[socket.socket]]:
        """``select.select`` with ``timeout`` in loop seconds, recorded before and after.

        This thread is not the loop, so the loop's gate cannot hold it: it holds itself. While
        the loop is paused it waits here for the loop's next step, and its timeout runs on the
        loop's clock, so a stepped or paused class sees the same calls, in the same loop time,
        as a running one."""
        scene = self.scene
        loop = scene.loop
        gate = loop.gate
        self._steps_seen = gate.follow(self.thread_name, self._steps_seen, self._stopping.is_set)
        self.calls += 1
        scene.emit(
            "select.call",
            round=self.number,
            call=self.calls,
            inputs=self.names(inputs),
            outputs=self.names(outputs),
            errors=self.names(errors),
            timeout=timeout,
            wall_timeout=round(timeout / scene.speed, 6),
        )
        before, started = loop.time(), time.perf_counter()
        gate.follower_deadline(self.thread_name, before + timeout)
        readable, writable, exceptional = self._select_in_loop_time(
            inputs, outputs, errors, before + timeout
        )
        gate.follower_busy(self.thread_name)
        scene.emit(
            "select.returned",
            round=self.number,
            call=self.calls,
            readable=self.names(readable),
            writable=self.names(writable),
            exceptional=self.names(exceptional),
            timed_out=not (readable or writable or exceptional),
            waited=round(loop.time() - before, 6),
            waited_wall=round(time.perf_counter() - started, 6),
        )
        return readable, writable, exceptional

    def _select_in_loop_time(
        self,
        inputs: list[socket.socket],
        outputs: list[socket.socket],
        errors: list[socket.socket],
        deadline: float,
    ) -> tuple[list[socket.socket], list[socket.socket], list[socket.socket]]:
        """``select.select`` until ``deadline`` on the loop's clock: in slices of at most
        ``LOOK_AGAIN`` wall seconds, so a pause, a speed change or a stepped jump of the clock
        is seen at once."""
        clock = self.scene.loop.clock
        while True:
            remaining = deadline - clock.now()
            if remaining <= 0 or self._stopping.is_set():
                return [], [], []
            wall = clock.wall_seconds(remaining) or 0.0
            wait = LOOK_AGAIN if clock.frozen else min(LOOK_AGAIN, wall)
            ready = select.select(inputs, outputs, errors, wait)
            if any(ready):
                return ready

    def names(self, socks: list[socket.socket]) -> list[dict[str, Any]]:
        return [fd_fields(s.fileno(), self._labels[s.fileno()]) for s in socks]

    def close(self, sock: socket.socket, fd: int) -> None:
        """Close once (the notes close on read; ``run`` closes on every other way out)."""
        with self._lock:
            if sock.fileno() == -1:
                return
            sock.close()
        self.scene.client_event("sockets.closed", self.number, fd)

    def stop(self) -> None:
        """Ask the round to end now (safe from any thread)."""
        self._stopping.set()
        with self._lock:
            sock = self._sock
            if sock is not None and sock.fileno() != -1:
                # Wakes the select: readable, then EOF. Not connected yet: run() sees the flag.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _number(value: Any, name: str, kind: type, minimum: float) -> Any:
    """``value`` as ``kind`` (options may come from the command line as text), checked."""
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise SceneError(f"sockets option {name} must be a number, not {value!r}") from None
    if kind is float and not number > minimum:
        raise SceneError(f"sockets option {name} must be more than {minimum:g}, not {value!r}")
    if kind is int and number < minimum:
        raise SceneError(f"sockets option {name} must be at least {minimum:g}, not {value!r}")
    return number
