"""Command line: ``loopviz`` (the dashboard), ``loopviz SCENE`` (one scene), ``loopviz record``,
and ``loopviz run`` (the user's own program; ``cli_run``). Every traced program runs in a child
process (``loopviz.sources.child``); this process only reads its events.

Every bad input ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from loopviz import __version__
from loopviz.cli_run import add_run_parser, run, split_program
from loopviz.messages import USAGE_ERROR, UsageError, error, say, warn
from loopviz.output_file import OutputFile, OutputFileError, WriteStalled
from loopviz.scenes import SCENE_PATHS, SceneError, scene_class
from loopviz.stop_signals import StopSignals, signal_name
from loopviz.trace import check_speed

if TYPE_CHECKING:
    from loopviz.runner import SceneSpec, ScheduledAction
    from loopviz.sources.child import ChildSource

SIGPIPE_STATUS = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left
#: The dashboard runs each scene again this many loop seconds after it ends, so a class never
#: looks at a finished, frozen screen.
DEMO_REPEAT = 3.0
RECORD_CAPACITY = 1 << 20  # a recorder keeps up easily; this is only a safety margin
#: Records the dashboard's child keeps before the oldest drop (it writes them every 20 ms).
DASHBOARD_CAPACITY = 1 << 16


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

    add_run_parser(commands)
    for name in SCENE_PATHS:
        one = commands.add_parser(name, help=f"open the dashboard on the {name} scene")
        _add_scene_options(one, scene=name)
        one.add_argument(
            "--paused", action="store_true", default=argparse.SUPPRESS, help="start paused"
        )
        one.add_argument("--theme", default=argparse.SUPPRESS, help="colour theme")
    return parser


#: The top-level options that take a value (the command comes after them).
_GLOBAL_WITH_VALUE = frozenset({"--speed", "--theme"})


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line; for ``run``, everything after the script (or ``-m MODULE``) is the
    program's and goes to it untouched, ``--help`` included."""
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        i += 2 if argv[i] in _GLOBAL_WITH_VALUE else 1
    program = None
    if i < len(argv) and argv[i] == "run":
        options, program = split_program(argv[i + 1 :])
        argv = [*argv[: i + 1], *options]
    args = build_parser().parse_args(argv)
    args.program = program
    return args


def scene_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("ack", "consumers"):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    return options


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse(sys.argv[1:] if argv is None else list(argv))
        if args.command == "record":
            return record(args)
        if args.command == "run":
            return run(args)
        return dashboard(args)
    except (UsageError, SceneError) as exc:
        error(str(exc))
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130


# -- record ---------------------------------------------------------------------------------


def record(args: argparse.Namespace) -> int:
    """Run a scene headless, in a child process, and write its events. A signal that would
    kill the process stops the recording instead: every event so far is kept, and the exit
    status says which signal (128 + its number). A reader that goes away (``| head``) ends it
    quietly."""
    from loopviz.recording import copy_events
    from loopviz.runner import SceneSpec, ScheduledAction, check_specs

    options = scene_options(args)
    if options and args.scene != "queue":
        raise UsageError(f"--ack and --consumers apply to the queue scene, not {args.scene!r}")
    cls = scene_class(args.scene)
    duration = args.duration if args.duration is not None else cls.default_duration
    schedule = [ScheduledAction(at, args.scene, action) for at, action in args.schedule]
    spec = SceneSpec(args.scene, args.variant, options)
    check_specs([spec], schedule)
    for item in schedule:
        if duration is not None and item.at > duration:
            warn(
                f"--at {item.at:g}:{item.action} is after the recording ends "
                f"({duration:g} s of loop time): it will not happen"
            )
    where = "standard output" if args.output == "-" else args.output
    # Signals are caught from before the file is opened: a draft is never left behind, and a
    # FIFO nobody opens can still be given up on.
    with StopSignals() as stop:
        try:
            output = OutputFile.open(args.output, should_stop=stop.requested)
        except WriteStalled:
            say(f"stopped by {signal_name(stop.received or 0)}; nothing was written")
            return stop.exit_status
        except OutputFileError as exc:
            raise UsageError(str(exc)) from None
        source = scenes_source(
            [spec], speed=args.speed, interactive=False, duration=duration, schedule=schedule
        )
        try:
            source.start()
        except BaseException:  # a bug: the old file stays whole, the traceback is the report
            output.discard()
            raise
        ended = copy_events(source, output, stop, lambda number: source.interrupt())
    if ended.problem is not None:
        error(ended.problem)
    kept = f"{ended.events} events ({ended.last_t:.1f} s of loop time)"
    if ended.signal is not None:
        say(f"stopped by {signal_name(ended.signal)}; kept {kept} in {where}")
    elif ended.problem is None and not ended.reader_gone:
        say(f"recorded {kept} to {where}")
    if ended.dropped:
        warn(f"{ended.dropped} events were dropped (the recorder fell behind)")
    for scene, failure in ended.failures.items():
        error(f"scene {scene!r} failed: {failure}")
    if ended.signal is not None:
        return 128 + ended.signal
    if ended.reader_gone:
        return SIGPIPE_STATUS
    return 1 if ended.problem is not None or ended.failures else 0


def scenes_source(
    specs: list[SceneSpec],
    *,
    speed: float,
    paused: bool = False,
    interactive: bool,
    duration: float | None = None,
    schedule: list[ScheduledAction] | None = None,
) -> ChildSource:
    """A child process running built-in scenes."""
    from dataclasses import asdict

    from loopviz.sources.child import ChildSource

    config = {
        "scenes": [asdict(spec) for spec in specs],
        "speed": speed,
        "paused": paused,
        "duration": duration,
        "schedule": [asdict(item) for item in schedule or ()],
        "capacity": RECORD_CAPACITY if not interactive else DASHBOARD_CAPACITY,
        "header": {"scenes": [spec.name for spec in specs], "argv": sys.argv[1:]},
    }
    actions = {spec.name: scene_class(spec.name).actions for spec in specs}
    return ChildSource(
        config, scenes=[spec.name for spec in specs], actions=actions, interactive=interactive
    )


# -- the dashboard --------------------------------------------------------------------------


def dashboard(args: argparse.Namespace) -> int:
    from loopviz.runner import SceneSpec, check_specs

    if args.command is None:
        specs = [SceneSpec(name, repeat=DEMO_REPEAT) for name in SCENE_PATHS]
        focus = None
    else:
        specs = [SceneSpec(args.command, args.variant, scene_options(args), repeat=DEMO_REPEAT)]
        focus = args.command
    for spec in specs:
        scene_class(spec.name)  # fail early, with one line, on a scene that is not there
    check_specs(specs)
    source = scenes_source(specs, speed=args.speed, paused=args.paused, interactive=True)
    return open_dashboard(source, args, focus=focus)


def open_dashboard(
    source: ChildSource, args: argparse.Namespace, *, focus: str | None, record: str | None = None
) -> int:
    """The dashboard on ``source`` until the user quits (one line if this build has none)."""
    try:
        from loopviz.session import Session
        from loopviz.ui.app import run_dashboard
        from loopviz.ui.theme import THEMES
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("loopviz"):
            raise UsageError(
                "the dashboard is not available in this build; use 'loopviz record'"
            ) from None
        raise
    theme = getattr(args, "theme", None)
    if theme is not None and theme not in THEMES:
        raise UsageError(f"no theme {theme!r} (themes: {', '.join(THEMES)})")
    output = None
    if record is not None:
        try:
            output = OutputFile.open(record)
        except OutputFileError as exc:
            raise UsageError(str(exc)) from None
    session = Session(
        source, speed=getattr(args, "speed", 1.0), paused=bool(getattr(args, "paused", False))
    )
    session.record_to(output)
    try:
        status = run_dashboard(session, focus=focus, theme=theme)
    finally:
        problem = session.finish_recording()
    if problem is not None:
        error(problem)
        return status or 1
    if record is not None:
        say(f"recorded {session.events_recorded} events to {record}")
    return status
