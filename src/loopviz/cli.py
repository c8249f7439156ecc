"""Command line: ``loopviz`` (the dashboard), ``loopviz SCENE`` (one scene), ``loopviz record``.

Every bad input ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from loopviz import __version__
from loopviz.output_file import OutputFile, OutputFileError, ReaderGone
from loopviz.scenes import SCENE_PATHS, SceneError, scene_class
from loopviz.stop_signals import StopSignals, signal_name
from loopviz.trace import check_speed

if TYPE_CHECKING:
    from loopviz.runner import SceneRunner

USAGE_ERROR = 2
SIGPIPE_STATUS = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left
#: An error message shows at most this much of any one word the user typed (a 100 KB argument
#: would bury the message).
LONGEST_WORD = 120
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
    if not sep or not action or not 0 <= at < math.inf:  # not NaN, not infinite
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
    except (UsageError, SceneError) as exc:
        print(f"loopviz: error: {one_line(str(exc))}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130


def one_line(message: str) -> str:
    """``message`` fit for one line of stderr: control characters escaped, any word longer than
    ``LONGEST_WORD`` cut, saying how long it was."""
    message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)

    def cut(word: re.Match[str]) -> str:
        text = word.group()
        return f"{text[: LONGEST_WORD - 20]}… ({len(text)} characters)"

    return re.sub(rf"[^\s:,'\"]{{{LONGEST_WORD + 1},}}", cut, message)


# -- record ---------------------------------------------------------------------------------


def record(args: argparse.Namespace) -> int:
    """Run a scene headless and write its events. A signal that would kill the process stops
    the recording instead: every event so far is kept, and the exit status says which signal
    (128 + its number). A reader that goes away (``| head``) ends it quietly."""
    from loopviz.runner import SceneRunner, SceneSpec, ScheduledAction

    options = scene_options(args)
    if options and args.scene != "queue":
        raise UsageError(f"--ack and --consumers apply to the queue scene, not {args.scene!r}")
    cls = scene_class(args.scene)
    duration = args.duration if args.duration is not None else cls.default_duration
    schedule = [ScheduledAction(at, args.scene, action) for at, action in args.schedule]
    try:
        output = OutputFile.open(args.output)
    except OutputFileError as exc:
        raise UsageError(str(exc)) from None
    try:
        runner = SceneRunner(
            [SceneSpec(args.scene, args.variant, options)],
            speed=args.speed,
            capacity=RECORD_CAPACITY,
            duration=duration,
            schedule=schedule,
        )
    except BaseException:
        output.discard()
        raise
    for item in schedule:
        if item.at > duration:
            _warn(
                f"--at {item.at:g}:{item.action} is after the recording ends "
                f"({duration:g} s of loop time): it will not happen"
            )
    copied = _Copied()
    with StopSignals() as stop:
        runner.start()
        try:
            _copy_events(runner, output, stop, copied)
            output.close()
        except ReaderGone:
            runner.stop()
            output.discard()
            return SIGPIPE_STATUS
        except OutputFileError as exc:
            runner.stop()
            output.discard()
            print(f"loopviz: error: {one_line(str(exc))}", file=sys.stderr)
            return 1
        except BaseException:  # a bug: the old file stays whole, the traceback is the report
            runner.stop()
            output.discard()
            raise
    where = "standard output" if args.output == "-" else args.output
    kept = f"{copied.events} events ({copied.last_t:.1f} s of loop time)"
    if stop.received is not None:
        _say(f"stopped by {signal_name(stop.received)}; kept {kept} in {where}")
    else:
        _say(f"recorded {kept} to {where}")
    if runner.stream.dropped:
        _warn(f"{runner.stream.dropped} events were dropped (the recorder fell behind)")
    for scene, error in runner.failures.items():
        print(f"loopviz: error: scene {scene!r} failed: {error}", file=sys.stderr)
    if stop.received is not None:
        return stop.exit_status
    return 1 if runner.failures else 0


@dataclass
class _Copied:
    """How much of the recording is in the file so far."""

    events: int = 0
    last_t: float = 0.0


def _copy_events(
    runner: SceneRunner, output: OutputFile, stop: StopSignals, copied: _Copied
) -> None:
    """Move events from the loop to the file until the run ends or a stop signal arrives; each
    batch is flushed whole, so the file holds every event copied whatever comes next."""
    while True:
        stopping = stop.received is not None
        if stopping:
            runner.stop()
        alive = runner.running
        batch = runner.stream.read()
        for event in batch:
            output.write(event.to_json() + "\n")
        output.flush()
        copied.events += len(batch)
        if batch:
            copied.last_t = batch[-1].t
        if stopping or not alive:
            return
        time.sleep(0.02)


def _say(message: str) -> None:
    print(f"loopviz: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"loopviz: warning: {message}", file=sys.stderr)


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
        from loopviz.ui.theme import THEMES
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("loopviz"):
            raise UsageError(
                "the dashboard is not available in this build; use 'loopviz record'"
            ) from None
        raise
    if args.theme is not None and args.theme not in THEMES:
        raise UsageError(f"no theme {args.theme!r} (themes: {', '.join(THEMES)})")
    return run_dashboard(specs, focus=focus, speed=args.speed, paused=args.paused, theme=args.theme)
