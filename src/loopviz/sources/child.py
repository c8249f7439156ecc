"""A traced program in a child process of its own: the built-in scenes, or the user's script.

The child (``loopviz.wire.child``) writes a header and then its events as JSON lines on one
pipe and reads commands from another; nothing goes over a network. The parent never waits on
it: ``read`` takes what has arrived. In the dashboard the child runs in a session of its own
(the terminal's keys are the dashboard's), with its stdout and stderr read here as ``output``
events; headless (``run --headless``) it keeps the terminal, as under ``python``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO

from loopviz.events import Event
from loopviz.sources.base import ENDED, EXITED, RUNNING, STARTING, CommandError, Status
from loopviz.wire.commands import ACT, RESUME, command_line
from loopviz.wire.format import HEADER_KIND, encode

#: Bytes of events read ahead of what the models took; beyond it the pipe fills and the
#: program's rings drop their oldest records (the program itself never waits).
PENDING_LIMIT = 16 << 20
#: The events pipe's size, where the system allows it (Linux: up to 1 MB unprivileged).
PIPE_SIZE = 1 << 20
#: Seconds a program gets to end after SIGINT (its own clean-up) before it is killed.
INTERRUPT_GRACE = 2.0
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class ChildSource:
    """One child process running one traced program; restartable."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        scenes: Sequence[str] = (),
        actions: dict[str, tuple[str, ...]] | None = None,
        interactive: bool = True,
        stdin: str | None = None,
    ) -> None:
        """``config`` is the child's (see ``loopviz.wire.child``) less its pipes.
        ``interactive``: the dashboard's child (own session, output read here, stdin from
        ``stdin`` or empty); else the terminal's (``run --headless``, ``record``)."""
        self.config = config
        self.scenes = tuple(scenes)
        self.actions = actions or {}
        self.interactive = interactive
        self.stdin = stdin
        self.program = "program" in config
        self.header: dict[str, Any] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._reset()

    def _reset(self) -> None:
        self._events_fd: int | None = None
        self._commands_fd: int | None = None
        self._pending = bytearray()
        self._eof = False
        self._seq = 0
        self._last_t = 0.0
        self._ended_told = False
        self._outputs: dict[str, tuple[BinaryIO, bytearray]] = {}
        #: Events read so far (the header not counted), and the loop time of the latest.
        self.events_read = 0
        #: Events the program's rings dropped (the latest ``events_dropped`` total), and the
        #: scenes that failed (``scene.failed``), as ``read_lines`` saw them go by.
        self.dropped = 0
        self.failures: dict[str, str] = {}

    @property
    def last_t(self) -> float:
        return self._last_t

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        events_r, events_w = os.pipe()
        commands_r, commands_w = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(events_w, _F_SETPIPE_SZ, PIPE_SIZE)
        config = {**self.config, "events_fd": events_w, "commands_fd": commands_r}
        stdin: Any = None
        if self.interactive:
            stdin = open(self.stdin, "rb") if self.stdin else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loopviz.wire.child", json.dumps(config)],
                pass_fds=(events_w, commands_r),
                stdin=stdin,
                stdout=subprocess.PIPE if self.interactive else None,
                stderr=subprocess.PIPE if self.interactive else None,
                start_new_session=self.interactive,
            )
        finally:
            os.close(events_w)
            os.close(commands_r)
            if stdin not in (None, subprocess.DEVNULL):
                stdin.close()
        os.set_blocking(events_r, False)
        os.set_blocking(commands_w, False)
        self._events_fd, self._commands_fd = events_r, commands_w
        if self.interactive:
            for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
                assert stream is not None
                os.set_blocking(stream.fileno(), False)
                self._outputs[name] = (stream, bytearray())

    def interrupt(self) -> None:
        """Ask the program to end, and go on reading what it writes until it has: SIGINT for a
        user's program (its own clean-up runs, as at Ctrl+C), SIGTERM for the scenes."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(CommandError):
            self.send(RESUME)  # a paused loop would hold the signal's handler back
        self._signal(signal.SIGINT if self.program else signal.SIGTERM)

    def stop(self, timeout: float = 5.0) -> bool:
        """End the program (``interrupt``); killed if it has not ended within ``timeout`` (at
        most INTERRUPT_GRACE for a program). Its process group goes with it."""
        proc = self.proc
        if proc is None:
            return True
        if proc.poll() is None:
            self.interrupt()
            try:
                proc.wait(min(timeout, INTERRUPT_GRACE) if self.program else timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                proc.wait()
        if self.interactive:  # what the program started in its session goes too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self._close()
        return True

    def _signal(self, number: int) -> None:
        proc = self.proc
        assert proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.interactive:
                os.killpg(proc.pid, number)
            else:
                proc.send_signal(number)

    def _close(self) -> None:
        for fd in (self._events_fd, self._commands_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._events_fd = self._commands_fd = None
        self._eof = True  # nothing more will be read
        for stream, _ in self._outputs.values():
            stream.close()
        self._outputs.clear()

    def restart(self) -> None:
        self.stop()
        self.proc = None
        self._reset()
        self.start()

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    # -- status and commands -------------------------------------------------------------------

    def status(self) -> Status:
        proc = self.proc
        if proc is None:
            return Status(STARTING)
        code = proc.poll()
        if code is None or not self._eof:
            return Status(RUNNING)
        if not self.program:
            return Status(ENDED, code)
        if code < 0:
            return Status(EXITED, 128 - code, signal.Signals(-code).name)
        return Status(EXITED, code)

    def send(self, command: str, **fields: Any) -> None:
        if command == ACT:
            scene, action = fields.get("scene"), fields.get("action")
            if scene not in self.actions:
                raise CommandError(f"scene {scene!r} is not running")
            if action not in self.actions[scene]:
                choices = ", ".join(self.actions[scene]) or "none"
                raise CommandError(f"scene {scene!r} has no action {action!r} (actions: {choices})")
        fd = self._commands_fd
        if fd is None:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
            os.write(fd, command_line(command, **fields))

    # -- events --------------------------------------------------------------------------------

    def ready(self) -> bool:
        fd = self._events_fd
        if self._pending or fd is None or self._eof:
            return bool(self._pending)
        return bool(select.select([fd], [], [], 0)[0])

    def wait(self, timeout: float) -> None:
        """Until events may have arrived, or ``timeout`` seconds."""
        fd = self._events_fd
        if fd is None or self._eof:
            if self.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout)
            return
        select.select([fd], [], [], timeout)

    def read_lines(self) -> bytes:
        """Every whole line that has arrived, as it came (``run --headless --record`` and
        ``record`` copy them to the file unparsed). The header is the first line."""
        self._fill()
        pending = self._pending
        end = pending.rfind(b"\n") + 1
        if not end:
            return b""
        chunk = bytes(pending[:end])
        del pending[:end]
        self.events_read += chunk.count(b"\n")
        if self.header is None and chunk.startswith(b'{"kind":"recording"'):
            with contextlib.suppress(ValueError):
                self.header = json.loads(chunk[: chunk.find(b"\n")])
            self.events_read -= 1
        last = chunk[chunk.rfind(b"\n", 0, end - 1) + 1 : end]
        with contextlib.suppress(ValueError, KeyError):
            data = json.loads(last)
            if data.get("kind") != HEADER_KIND:
                self._seq = data["seq"] + 1
                self._last_t = data["t"]
        self._note(chunk)
        return chunk

    def _note(self, chunk: bytes) -> None:
        """Dropped events and failed scenes, from the lines that say so (rare: found by a
        search of the bytes, not by parsing every line)."""
        for marker in (b'"kind":"events_dropped"', b'"kind":"scene.failed"'):
            start = chunk.find(marker)
            while start >= 0:
                line_start = chunk.rfind(b"\n", 0, start) + 1
                line_end = chunk.find(b"\n", start)
                with contextlib.suppress(ValueError):
                    data = json.loads(chunk[line_start:line_end])
                    if data["kind"] == "events_dropped":
                        self.dropped = data.get("total", self.dropped)
                    else:
                        self.failures[str(data.get("scene"))] = str(data.get("error"))
                start = chunk.find(marker, line_end)

    def ending_line(self) -> bytes:
        """``program_exited``, once the program has exited and every event was read: the
        last line of its recording."""
        event = self._ending()
        return b"" if event is None else (encode(event.to_dict()) + "\n").encode()

    def read(self, limit: int | None = None) -> list[Event]:
        self._fill()
        out: list[Event] = []
        pending = self._pending
        start = 0
        while limit is None or len(out) < limit:
            end = pending.find(b"\n", start)
            if end < 0:
                break
            line = pending[start:end]
            start = end + 1
            try:
                data = json.loads(line)
            except ValueError:
                continue
            kind = data.pop("kind", None)
            if kind == HEADER_KIND:
                self.header = {"kind": kind, **data}
                continue
            t = data.pop("t", self._last_t)
            data.pop("seq", None)
            out.append(Event(self._seq, t, kind, data))
            self._seq += 1
            self._last_t = t
        del pending[:start]
        self.events_read += len(out)
        out.extend(self._program_output())
        ending = self._ending()
        if ending is not None:
            out.append(ending)
        return out

    def _fill(self) -> None:
        fd = self._events_fd
        if fd is None or self._eof:
            return
        while len(self._pending) < PENDING_LIMIT:
            try:
                chunk = os.read(fd, PIPE_SIZE)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._eof = True
                return
            self._pending += chunk

    def _program_output(self) -> list[Event]:
        """What the program wrote to its stdout and stderr outside a traced loop's task (or
        below Python: a subprocess, a C library), whole lines, as ``output`` events."""
        out = []
        for name, (stream, partial) in self._outputs.items():
            ended = False
            while True:
                try:
                    chunk = os.read(stream.fileno(), 65536)
                except BlockingIOError:
                    break
                except OSError:
                    chunk = b""
                if not chunk:
                    ended = True
                    break
                partial += chunk
            end = len(partial) if ended else partial.rfind(b"\n") + 1
            if end:
                text = partial[:end].decode("utf-8", "replace")
                del partial[:end]
                out.append(
                    Event(
                        self._seq,
                        self._last_t,
                        "output",
                        {"task": None, "name": None, "text": text, "thread": name},
                    )
                )
                self._seq += 1
        return out

    def _ending(self) -> Event | None:
        if not self.program or self._ended_told or self._pending:
            return None
        status = self.status()
        if status.state != EXITED:
            return None
        self._ended_told = True
        event = Event(
            self._seq,
            self._last_t,
            "program_exited",
            {"code": status.code, "signal": status.signal, "events": self.events_read},
        )
        self._seq += 1
        return event
