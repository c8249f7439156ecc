"""``loopviz run``: the user's own program, unchanged, traced in a child process of its own.

    loopviz run [options] SCRIPT [ARGS...]
    loopviz run [options] -m MODULE [ARGS...]

Everything after the script (or ``-m MODULE``) is the program's, as with ``python``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.machinery
import importlib.util
import os
import signal
from collections.abc import Sequence
from typing import Any

from loopviz.messages import UsageError, error, say
from loopviz.output_file import OutputFile, OutputFileError, WriteStalled
from loopviz.stop_signals import StopSignals, signal_name

#: Options of ``run`` that take a value (the program's part starts after them).
OPTIONS_WITH_VALUE = frozenset({"--speed", "--theme", "--record", "--stdin"})
#: Records a program's loop keeps before the oldest drop (the writer reads every 20 ms).
RUN_CAPACITY = 1 << 18


def split_program(argv: Sequence[str]) -> tuple[list[str], dict[str, Any] | None]:
    """``run``'s own options, and the program: ``{"script": ..., "args": [...]}`` or
    ``{"module": ..., "args": [...]}`` (None if none was named)."""
    options: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "-m" or (word.startswith("-m") and not word.startswith("--")):
            module = word[2:] or (argv[i + 1] if i + 1 < len(argv) else "")
            rest = argv[i + 1 :] if word[2:] else argv[i + 2 :]
            if not module:
                raise UsageError("-m needs a module name (see 'loopviz run --help')")
            return options, {"module": module, "args": list(rest)}
        if word == "--":
            i += 1
            break
        if not word.startswith("-") or word == "-":
            break
        options.append(word)
        if word in OPTIONS_WITH_VALUE and "=" not in word and i + 1 < len(argv):
            options.append(argv[i + 1])
            i += 1
        i += 1
    if i >= len(argv):
        return options, None
    return options, {"script": argv[i], "args": list(argv[i + 1 :])}


def add_run_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run your own asyncio program under the dashboard (or headless, recording it)",
        usage="loopviz run [options] SCRIPT [ARGS...] | -m MODULE [ARGS...]",
        description="Run a Python program, unchanged, with every asyncio loop it makes traced. "
        "Everything after SCRIPT (or -m MODULE) is the program's.",
    )
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a module, as python -m")
    run.add_argument(
        "--speed",
        type=_speed_type(),
        default=argparse.SUPPRESS,
        help="loop clock speed, 0.05 to 20 (default 1)",
    )
    run.add_argument(
        "--paused", action="store_true", default=argparse.SUPPRESS, help="start paused"
    )
    run.add_argument("--theme", default=argparse.SUPPRESS, help="colour theme")
    run.add_argument("--record", metavar="FILE", help="write every event to FILE (JSON lines)")
    run.add_argument(
        "--headless",
        action="store_true",
        help="no dashboard: the program keeps the terminal, and loopviz exits with its status",
    )
    run.add_argument(
        "--stdin", metavar="FILE", help="the program's standard input in the dashboard (else empty)"
    )


def _speed_type() -> Any:
    from loopviz.cli import _speed

    return _speed


def check_program(program: dict[str, Any] | None) -> None:
    """One line (UsageError) for a program that cannot be run at all."""
    if program is None:
        raise UsageError("name a script to run, or -m MODULE (see 'loopviz run --help')")
    if "module" in program:
        top = program["module"].partition(".")[0]
        found = None
        with contextlib.suppress(ImportError, ValueError):  # python -m looks in . first
            found = importlib.machinery.PathFinder.find_spec(top, [os.getcwd()]) or (
                importlib.util.find_spec(top) if top else None
            )
        if found is None:
            raise UsageError(f"no module named {top!r}")
        return
    script = program["script"]
    if os.path.isdir(script):
        raise UsageError(f"{script} is a directory, not a script")
    if not os.path.exists(script):
        raise UsageError(f"no such file: {script}")
    if not os.access(script, os.R_OK):
        raise UsageError(f"cannot read {script}: permission denied")


def child_config(args: argparse.Namespace, program: dict[str, Any]) -> dict[str, Any]:
    shown = f"-m {program['module']}" if "module" in program else program["script"]
    return {
        "program": program,
        "speed": getattr(args, "speed", 1.0),
        "paused": bool(getattr(args, "paused", False)),
        "headless": bool(args.headless),
        "capacity": RUN_CAPACITY,
        "header": {
            "program": shown,
            "argv": [shown, *program["args"]],
            "cwd": os.getcwd(),
        },
    }


def run(args: argparse.Namespace) -> int:
    program = args.program
    check_program(program)
    if args.headless and getattr(args, "paused", False):
        raise UsageError("--paused needs the dashboard: a headless program cannot be stepped")
    if args.headless and args.stdin:
        raise UsageError("--stdin is for the dashboard: headless, the program reads this terminal")
    if args.stdin and not os.path.isfile(args.stdin):
        raise UsageError(f"no such file: {args.stdin}")
    config = child_config(args, program)
    if args.headless:
        return _run_headless(config, args.record)
    return _run_dashboard(config, args)


def _run_headless(config: dict[str, Any], record: str | None) -> int:
    """The program keeps the terminal (stdin, stdout, stderr, the terminal's Ctrl+C) and its
    exit status; its events go to ``record``. loopviz says nothing unless something failed."""
    from loopviz.recording import copy_events
    from loopviz.sources.child import ChildSource

    # Ctrl+C at the terminal reaches the program itself (same process group); SIGTERM and
    # SIGHUP sent to loopviz are passed on to it. Either way its own clean-up runs.
    with StopSignals() as stop:
        try:
            output = OutputFile.open(record if record else os.devnull, should_stop=stop.requested)
        except WriteStalled:
            say(f"stopped by {signal_name(stop.received or 0)}; nothing was written")
            return stop.exit_status
        except OutputFileError as exc:
            raise UsageError(str(exc)) from None
        source = ChildSource(config, interactive=False)

        def pass_on(number: int) -> None:
            if number != signal.SIGINT and source.proc is not None:
                source.proc.send_signal(number)

        try:
            source.start()
        except BaseException:
            output.discard()
            raise
        copied = copy_events(source, output, stop, pass_on)
    if copied.problem is not None:
        error(copied.problem)
    status = source.status()
    if copied.events == 0 and status.code == 0:  # a failed program's own error says why
        say("the program started no asyncio loop: nothing was traced")
    return status.code if status.code is not None else 1


def _run_dashboard(config: dict[str, Any], args: argparse.Namespace) -> int:
    from loopviz.cli import open_dashboard
    from loopviz.sources.child import ChildSource

    source = ChildSource(config, interactive=True, stdin=args.stdin)
    return open_dashboard(source, args, focus=None, record=args.record)
