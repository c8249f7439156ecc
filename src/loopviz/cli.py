"""Command line: ``loopviz`` (the dashboard), ``loopviz SCENE`` (one scene), ``loopviz record``.

Every bad input ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import IO, Any, NoReturn

from loopviz import __version__
from loopviz.scenes import SCENE_PATHS, SceneError, scene_class
from loopviz.trace import check_speed

USAGE_ERROR = 2
#: The dashboard runs each scene again this many loop seconds after it ends, so a class never
#: looks at a finished, frozen screen.
DEMO_REPEAT = 3.0
RECORD_CAPACITY = 1 << 20  # a recorder keeps up easily; this is only a safety margin


class UsageError(Exception):
    """A mistake in what the user typed; its message is the whole error line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# -- argument types: each raises ArgumentTypeError with a message fit for one line -----------------


def _speed(text: str) -> float:
    try:
        return check_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < 86_400:
        raise argparse.ArgumentTypeError(f"seconds must be between 0 and 86400, got {text}")
    return value


def _consumers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= 8:
        raise argparse.ArgumentTypeError(f"consumers must be between 0 and 8, got {value}")
    return value


def _scheduled(text: str) -> tuple[float, str]:
    when, sep, action = text.partition(":")
    try:
        at = float(when)
    except ValueError:
        at = -1.0
    if not sep or not action or at < 0:
        raise argparse.ArgumentTypeError(
            f"expected T:ACTION with T in loop seconds (e.g. 2:consumer-down), got {text!r}"
        )
    return at, action


def _add_scene_options(parser: argparse.ArgumentParser, *, scene: str | None) -> None:
    parser.add_argument("--variant", help="which variant of the scene to run (see the README)")
    # SUPPRESS: written after the command it sets the speed; not written, the value given
    # before the command (loopviz --speed 2 tasks) stands.
    parser.add_argument(
        "--speed",
        type=_speed,
        default=argparse.SUPPRESS,
        help="loop clock speed, 0.05 to 20 (default 1)",
    )
    if scene in (None, "queue"):
        parser.add_argument(
            "--ack",
            choices=("manual", "auto", "none"),
            help="queue scene: ack mode ('none' = no queue at all)",
        )
        parser.add_argument(
            "--consumers", type=_consumers, help="queue scene: consumers at start (0-8)"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="loopviz",
        description="Watch a real asyncio event loop at work. With no command, opens the dashboard "
        "on all the built-in scenes.",
    )
    parser.add_argument("--version", action="version", version=f"loopviz {__version__}")
    parser.add_argument(
        "--speed", type=_speed, default=1.0, help="loop clock speed, 0.05 to 20 (default 1)"
    )
    parser.add_argument("--paused", action="store_true", help="start paused (space runs, n steps)")
    parser.add_argument("--theme", help="colour theme (e.g. loopviz-projector for a projector)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    record = commands.add_parser(
        "record", help="run a scene headless and write its events as JSON lines"
    )
    record.add_argument("scene", help=f"scene to run: {', '.join(SCENE_PATHS)}")
    record.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="where to write the events (JSONL); '-' for standard output",
    )
    _add_scene_options(record, scene=None)
    record.add_argument(
        "--duration", type=_positive_seconds, help="stop after this many seconds of loop time"
    )
    record.add_argument(
        "--at",
        dest="schedule",
        type=_scheduled,
        action="append",
        default=[],
        metavar="T:ACTION",
        help="take ACTION at loop time T (repeatable), "
        "e.g. --at 2:consumer-down --at 6:consumer-up",
    )

    for name in SCENE_PATHS:
        one = commands.add_parser(name, help=f"open the dashboard on the {name} scene")
        _add_scene_options(one, scene=name)
        one.add_argument(
            "--paused", action="store_true", default=argparse.SUPPRESS, help="start paused"
        )
        one.add_argument("--theme", default=argparse.SUPPRESS, help="colour theme")
    return parser


def scene_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("ack", "consumers"):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    return options


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "record":
            return record(args)
        return dashboard(args)
    except UsageError as exc:
        print(f"loopviz: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except SceneError as exc:
        print(f"loopviz: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130


# -- record ---------------------------------------------------------------------------------


def record(args: argparse.Namespace) -> int:
    from loopviz.runner import SceneRunner, SceneSpec, ScheduledAction

    options = scene_options(args)
    if options and args.scene != "queue":
        raise UsageError(f"--ack and --consumers apply to the queue scene, not {args.scene!r}")
    cls = scene_class(args.scene)
    duration = args.duration if args.duration is not None else cls.default_duration
    schedule = [ScheduledAction(at, args.scene, action) for at, action in args.schedule]
    sink = _open_output(args.output)
    try:
        runner = SceneRunner(
            [SceneSpec(args.scene, args.variant, options)],
            speed=args.speed,
            capacity=RECORD_CAPACITY,
            duration=duration,
            schedule=schedule,
        )
    except BaseException:
        sink.discard()
        raise
    written, last_t = 0, 0.0
    runner.start()
    try:
        while True:
            alive = runner.running
            batch = runner.stream.read()
            for event in batch:
                sink.stream.write(event.to_json() + "\n")
            written += len(batch)
            if batch:
                last_t = batch[-1].t
            if not alive:
                break
            time.sleep(0.02)
    except KeyboardInterrupt:
        runner.stop()
        for event in runner.stream.read():
            sink.stream.write(event.to_json() + "\n")
            written += 1
        sink.commit()
        print(f"loopviz: interrupted; kept {written} events in {args.output}", file=sys.stderr)
        return 130
    sink.commit()
    dropped = runner.stream.dropped
    summary = f"recorded {written} events ({last_t:.1f} s of loop time) to {args.output}"
    if dropped:
        summary += f"; {dropped} events were dropped"
    print(f"loopviz: {summary}", file=sys.stderr)
    for scene, error in runner.failures.items():
        print(f"loopviz: error: scene {scene!r} failed: {error}", file=sys.stderr)
    return 1 if runner.failures else 0


class _Output:
    """Writes to a temporary file beside the target and renames it into place only when done,
    so an existing file is never left half-overwritten."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._temp: str | None = None
        if path == "-":
            self.stream: IO[str] = sys.stdout
            return
        target = os.path.abspath(path)
        folder = os.path.dirname(target)
        if os.path.isdir(target):
            raise UsageError(f"cannot write {path}: it is a directory")
        if not os.path.isdir(folder):
            raise UsageError(f"cannot write {path}: folder {folder} does not exist")
        try:
            handle, self._temp = tempfile.mkstemp(
                prefix=".loopviz-", suffix=".jsonl.part", dir=folder
            )
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        self.stream = os.fdopen(handle, "w", encoding="utf-8")

    def commit(self) -> None:
        if self._temp is None:
            self.stream.flush()
            return
        self.stream.close()
        os.replace(self._temp, self.path)
        self._temp = None

    def discard(self) -> None:
        if self._temp is None:
            return
        self.stream.close()
        with contextlib.suppress(OSError):
            os.unlink(self._temp)
        self._temp = None


def _open_output(path: str) -> _Output:
    return _Output(path)


# -- the dashboard --------------------------------------------------------------------------


def dashboard(args: argparse.Namespace) -> int:
    from loopviz.runner import SceneSpec

    if args.command is None:
        specs = [SceneSpec(name, repeat=DEMO_REPEAT) for name in SCENE_PATHS]
        focus = None
    else:
        specs = [SceneSpec(args.command, args.variant, scene_options(args), repeat=DEMO_REPEAT)]
        focus = args.command
    for spec in specs:
        scene_class(spec.name)  # fail early, with one line, on a scene that is not there
    try:
        from loopviz.ui.app import run_dashboard
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("loopviz"):
            raise UsageError(
                "the dashboard is not available in this build; use 'loopviz record'"
            ) from None
        raise
    return run_dashboard(specs, focus=focus, speed=args.speed, paused=args.paused, theme=args.theme)
