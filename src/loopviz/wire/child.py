"""The child process: runs one traced program and writes its events to the parent.

    python -m loopviz.wire.child CONFIG

CONFIG is JSON: ``events_fd`` and ``commands_fd`` (the two pipes), ``speed``, ``paused``, the
header's fields, and either ``scenes`` (built-in scenes, run by ``SceneRunner``) or ``program``
(the user's script or module, run as ``__main__`` on this process's main thread, as ``python``
runs it). A thread writes the events every ``WRITE_EVERY`` seconds; another takes commands. The
program never waits for its viewer: if the parent reads slowly, the writer waits, the loops'
rings fill and drop their oldest records, and the stream says how many.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import json
import os
import runpy
import signal
import sys
import threading
import types
from collections.abc import Callable
from functools import partial
from importlib.machinery import SourceFileLoader
from typing import Any

from loopviz.trace.loop import keep_loops_traced, make_default
from loopviz.trace.output import route_output
from loopviz.wire.commands import apply_command, parse_command
from loopviz.wire.format import encode, header
from loopviz.wire.producer import Producer

#: Seconds between two writes of what the loops recorded: a key's effect is on screen within
#: this plus one of the dashboard's looks (see ``LoopvizApp.hurry``).
WRITE_EVERY = 0.01
#: Exit status of the child when its own set-up fails (the parent reports its stderr).
SETUP_FAILED = 70


class Writer(threading.Thread):
    """Writes the producer's lines to the events pipe until stopped; ``flush`` writes now."""

    def __init__(self, producer: Producer, fd: int) -> None:
        super().__init__(name="loopviz-events-writer", daemon=True)
        self.producer = producer
        self.fd = fd
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.gone = False  # the parent closed its end: nothing more is written

    def send(self, text: str) -> None:
        if self.gone or not text:
            return
        data = memoryview(text.encode("utf-8", "surrogateescape"))
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:  # EPIPE: the viewer went away; the program goes on
            self.gone = True

    def flush(self) -> None:
        with self.lock:
            self.send(self.producer.lines())

    def run(self) -> None:
        while not self.stopped.wait(WRITE_EVERY):
            self.flush()

    def finish(self) -> None:
        """The last events, then the end of the stream."""
        self.stopped.set()
        self.flush()
        with self.lock:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.gone = True


class CommandReader(threading.Thread):
    """Takes commands from the parent and applies them (within a few ms of their arrival)."""

    def __init__(
        self, fd: int, apply: Callable[[dict[str, Any]], None], on_end: Callable[[], None]
    ) -> None:
        super().__init__(name="loopviz-commands", daemon=True)
        self.fd = fd
        self.apply = apply
        self.on_end = on_end

    def run(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                self.on_end()
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                command = parse_command(line)
                if command is not None:
                    with contextlib.suppress(Exception):  # a command must never end the program
                        self.apply(command)


# -- built-in scenes ------------------------------------------------------------------------------


def run_scenes(config: dict[str, Any], producer: Producer, writer: Writer) -> int:
    from loopviz.runner import SceneRunner, SceneSpec, ScheduledAction

    specs = [SceneSpec(**spec) for spec in config["scenes"]]
    schedule = [ScheduledAction(**item) for item in config.get("schedule", ())]
    runner = SceneRunner(
        specs,
        speed=producer.speed,
        paused=producer.paused,
        capacity=producer.capacity,
        duration=config.get("duration"),
        schedule=schedule,
        virtual_time=bool(config.get("virtual_time")),
    )
    producer.add(runner.loop)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda *_: stop.set())
    CommandReader(
        config["commands_fd"], partial(apply_command, controls=producer, act=runner.act), stop.set
    ).start()
    writer.start()
    runner.start()
    while runner.running and not stop.wait(0.05):
        pass
    runner.stop()
    writer.finish()
    return 0


# -- the user's program --------------------------------------------------------------------------


def run_program(config: dict[str, Any], producer: Producer, writer: Writer) -> None:
    """Run the script or module as ``python`` would, with every loop it makes traced. Its
    exit status, its traceback and its signals are its own."""
    program = config["program"]
    make_default(producer.new_loop)
    keep_loops_traced(producer.new_loop, _tell)
    route_output(producer.tracer_on, passthrough=bool(config.get("headless")))
    if not config.get("headless"):
        with contextlib.suppress(AttributeError, ValueError):
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    interrupted = threading.Event()

    def at_exit() -> None:  # registered first, so it runs last of all atexit handlers
        writer.finish()
        if interrupted.is_set():  # as python does after an uncaught KeyboardInterrupt
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)

    atexit.register(at_exit)
    CommandReader(
        config["commands_fd"], partial(apply_command, controls=producer, act=None), lambda: None
    ).start()
    writer.start()
    try:
        if "module" in program:
            sys.argv = ["-m", *program["args"]]
            sys.path[0] = os.getcwd()
            runpy._run_module_as_main(program["module"], alter_argv=True)  # type: ignore[attr-defined]
        else:
            _run_script(program["script"], program["args"])
    except SystemExit:
        raise
    except BaseException as exc:  # the program's own error: reported as python reports it
        shown = _program_frames(exc.__traceback__)
        sys.excepthook(type(exc), exc.with_traceback(shown), shown)
        if isinstance(exc, KeyboardInterrupt):
            interrupted.set()
        raise SystemExit(1) from None


def _tell(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"loopviz: {message}", file=sys.__stderr__, flush=True)


_RUNNERS = frozenset({runpy._run_module_as_main.__code__})  # type: ignore[attr-defined]


def _run_script(path: str, args: list[str]) -> None:
    full = os.path.abspath(path)
    sys.argv = [path, *args]
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    with open(full, "rb") as source_file:
        source = source_file.read()
    code = compile(source, full, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=full,
        __cached__=None,
        __builtins__=builtins,
        __spec__=None,
        __loader__=SourceFileLoader("__main__", full),
    )
    sys.modules["__main__"] = main
    _RUNNERS_SEEN.add(code)
    exec(code, main.__dict__)


_RUNNERS_SEEN: set[types.CodeType] = set()


def _program_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback from the program's first frame on, as python would print it (none of
    loopviz's frames; ``-m`` keeps runpy's, as ``python -m`` shows them)."""
    start = tb
    while start is not None:
        code = start.tb_frame.f_code
        if code in _RUNNERS_SEEN or code in _RUNNERS:
            return start
        start = start.tb_next
    return None  # raised before the program ran (a syntax error): python shows no traceback


# -- entry ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    config = json.loads((argv if argv is not None else sys.argv)[1])
    events_fd, commands_fd = config["events_fd"], config["commands_fd"]
    for fd in (events_fd, commands_fd):  # the program's own children must not hold them
        os.set_inheritable(fd, False)
    producer = Producer(
        speed=config.get("speed", 1.0),
        paused=bool(config.get("paused")),
        capacity=config.get("capacity", 1 << 20),
    )
    writer = Writer(producer, events_fd)
    writer.send(encode(header(**config.get("header", {}))) + "\n")
    if "scenes" in config:
        return run_scenes(config, producer, writer)
    run_program(config, producer, writer)
    return 0


if __name__ == "__main__":
    status = main()
    if status:
        sys.exit(status)
