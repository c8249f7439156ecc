"""Command line: ``loopviz`` (the dashboard), ``loopviz SCENE`` (one scene), ``loopviz record``.

Every bad input ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from loopviz import __version__
from loopviz.output_file import OutputFile, OutputFileError, ReaderGone, WriteStalled
from loopviz.scenes import SCENE_PATHS, SceneError, scene_class
from loopviz.stop_signals import StopSignals, signal_name
from loopviz.trace import check_speed

if TYPE_CHECKING:
    from loopviz.runner import SceneRunner, SceneSpec, ScheduledAction

USAGE_ERROR = 2
SIGPIPE_STATUS = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left
#: An error message shows at most this much of any one word the user typed (a 100 KB argument
#: would bury the message).
LONGEST_WORD = 120
LONGEST_MESSAGE = 400
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


def variants_help(scene: str | None) -> str:
    """``--variant``'s help: the variants of ``scene`` (of every scene for ``record``), the
    default first."""
    names = [scene] if scene is not None else list(SCENE_PATHS)
    listed = []
    for name in names:
        try:
            variants = scene_class(name).variants
        except SceneError:
            continue  # not in this build: its own command says so
        listed.append(f"{name}: {', '.join(variants)}" if scene is None else ", ".join(variants))
    return f"which variant to run ({'; '.join(listed)}); the first is the default"


def _add_scene_options(parser: argparse.ArgumentParser, *, scene: str | None) -> None:
    parser.add_argument("--variant", help=variants_help(scene))
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
    parser.add_argument(
        "--theme", help="colour theme (default loopviz-projector: high contrast, e.g. textual-dark)"
    )
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
        _error(str(exc))
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

    message = re.sub(rf"[^\s:,'\"]{{{LONGEST_WORD + 1},}}", cut, message)
    if len(message) > LONGEST_MESSAGE:  # many words: a long argument with spaces in it
        message = f"{message[: LONGEST_MESSAGE - 30]}… ({len(message)} characters)"
    return message


# -- record ---------------------------------------------------------------------------------


def record(args: argparse.Namespace) -> int:
    """Run a scene headless and write its events. A signal that would kill the process stops
    the recording instead: every event so far is kept, and the exit status says which signal
    (128 + its number). A reader that goes away (``| head``) ends it quietly."""
    from loopviz.runner import SceneSpec, ScheduledAction

    options = scene_options(args)
    if options and args.scene != "queue":
        raise UsageError(f"--ack and --consumers apply to the queue scene, not {args.scene!r}")
    cls = scene_class(args.scene)
    duration = args.duration if args.duration is not None else cls.default_duration
    schedule = [ScheduledAction(at, args.scene, action) for at, action in args.schedule]
    where = "standard output" if args.output == "-" else args.output
    # Signals are caught from before the file is opened: a draft is never left behind, and a
    # FIFO nobody opens can still be given up on.
    with StopSignals() as stop:
        try:
            output = OutputFile.open(args.output, should_stop=stop.requested)
        except WriteStalled:
            _say(f"stopped by {signal_name(stop.received or 0)}; nothing was written")
            return stop.exit_status
        except OutputFileError as exc:
            raise UsageError(str(exc)) from None
        try:
            ended = _record_into(
                output, args, SceneSpec(args.scene, args.variant, options), duration, schedule, stop
            )
        except BaseException:  # a bug: the old file stays whole, the traceback is the report
            output.discard()
            raise
    if ended.problem is not None:
        _error(ended.problem)
    kept = f"{output.lines_written} events ({ended.last_t:.1f} s of loop time)"
    if ended.signal is not None:
        _say(f"stopped by {signal_name(ended.signal)}; kept {kept} in {where}")
    elif ended.problem is None and not ended.reader_gone:
        _say(f"recorded {kept} to {where}")
    if ended.dropped:
        _warn(f"{ended.dropped} events were dropped (the recorder fell behind)")
    for scene, error in ended.failures.items():
        _error(f"scene {scene!r} failed: {error}")
    if ended.signal is not None:
        return 128 + ended.signal
    if ended.reader_gone:
        return SIGPIPE_STATUS
    return 1 if ended.problem is not None or ended.failures else 0


@dataclass
class _Ended:
    """How a recording ended."""

    last_t: float = 0.0
    #: The stop signal that ended it before the scene did, if one did.
    signal: int | None = None
    reader_gone: bool = False
    #: Why the file could not be written, as one line.
    problem: str | None = None
    dropped: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def _record_into(
    output: OutputFile,
    args: argparse.Namespace,
    spec: SceneSpec,
    duration: float,
    schedule: list[ScheduledAction],
    stop: StopSignals,
) -> _Ended:
    from loopviz.runner import SceneRunner

    runner = SceneRunner(
        [spec], speed=args.speed, capacity=RECORD_CAPACITY, duration=duration, schedule=schedule
    )
    for item in schedule:
        if item.at > duration:
            _warn(
                f"--at {item.at:g}:{item.action} is after the recording ends "
                f"({duration:g} s of loop time): it will not happen"
            )
    ended = _Ended()
    runner.start()
    try:
        ended.signal = _copy_events(runner, output, stop, ended)
        output.close()
    except ReaderGone:
        ended.reader_gone = True
    except WriteStalled:
        ended.signal = stop.received
    except OutputFileError as exc:
        ended.problem = str(exc)
    finally:
        runner.stop()
        output.discard()  # after close() this does nothing; else the old file stays whole
    ended.dropped = runner.stream.dropped
    ended.failures = dict(runner.failures)
    return ended


def _copy_events(
    runner: SceneRunner, output: OutputFile, stop: StopSignals, ended: _Ended
) -> int | None:
    """Move events from the loop to the file until the run ends or a stop signal arrives (then
    return it); each batch is flushed whole, so the file holds every event copied whatever
    comes next."""
    while True:
        stopped_by = stop.received
        if stopped_by is not None:
            runner.stop()
        alive = runner.running
        batch = runner.stream.read()
        for event in batch:
            output.write(event.to_json() + "\n")
        output.flush()
        if batch:
            ended.last_t = batch[-1].t
        if stopped_by is not None or not alive:
            return stopped_by
        time.sleep(0.02)


def _say(message: str) -> None:
    """One line on stderr; nothing if stderr is closed or gone (a hung-up terminal): what the
    command did must not depend on whether anyone can read about it."""
    stream = sys.stderr
    if stream is None:  # print(file=None) would write to stdout, maybe into the recording
        return
    with contextlib.suppress(OSError, ValueError):
        print(f"loopviz: {one_line(message)}", file=stream, flush=True)


def _warn(message: str) -> None:
    _say(f"warning: {message}")


def _error(message: str) -> None:
    _say(f"error: {message}")


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
