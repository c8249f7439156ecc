"""Make the README's screenshots: the real dashboard, paused at known moments, in a fixed theme.

Each shot runs real scenes on a traced loop in virtual time (timers fire in order without
waiting, so every run reaches the same state), pauses the loop at an exact loop time, and saves
what the dashboard shows then. SVG always; PNG too when ``cairosvg`` is installed (install the
Fira Code font for faithful PNGs: ``apt-get install fonts-firacode``).

    python scripts/screenshots.py [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from loopviz.runner import SceneSpec, ScheduledAction
from loopviz.session import Session
from loopviz.sources.in_process import InProcessSource
from loopviz.ui.app import LoopvizApp
from loopviz.ui.theme import DEFAULT_THEME

#: What a user sees: the default theme.
THEME = DEFAULT_THEME


@dataclass(frozen=True)
class Shot:
    name: str
    caption: str
    specs: list[SceneSpec]
    pause_at: float
    size: tuple[int, int] = (120, 36)
    keys: tuple[str, ...] = ()
    actions: list[ScheduledAction] = field(default_factory=list)
    theme: str = THEME


SHOTS = [
    Shot(
        "dashboard",
        "All three scenes on one loop, paused at 3.1 s of loop time.",
        [SceneSpec("tasks", repeat=3.0), SceneSpec("sockets", repeat=3.0), SceneSpec("queue")],
        pause_at=3.1,
    ),
    Shot(
        "tasks-async",
        "The tasks scene: print_numbers and print_alphabet take turns at every await.",
        [SceneSpec("tasks", "async")],
        pause_at=2.1,
        keys=("1",),
    ),
    Shot(
        "tasks-compare",
        "async and sync side by side: the async pair finishes in 6.5 s, the sync pair needs 13 s.",
        [SceneSpec("tasks", "compare")],
        pause_at=7.0,
        keys=("1",),
    ),
    Shot(
        "sockets-select",
        "The sockets scene: client#1 was writable once connected (w) and readable when the"
        " reply came 1.25 s later (r); client#2 is waiting for its own.",
        [SceneSpec("sockets", "nonblocking")],
        pause_at=3.2,
        keys=("2",),
    ),
    Shot(
        "queue-backlog",
        "The queue scene with the SMS consumer down since 2 s: the backlog grows, nothing is lost.",
        [SceneSpec("queue")],
        pause_at=6.0,
        keys=("3",),
        actions=[ScheduledAction(2.0, "queue", "consumer-down")],
    ),
    Shot(
        "narrow-80x24",
        "At 80x24 the panels switch with 1, 2, 3.",
        [SceneSpec("tasks", repeat=3.0), SceneSpec("sockets", repeat=3.0), SceneSpec("queue")],
        pause_at=3.1,
        size=(80, 24),
    ),
    Shot(
        "projector",
        "The default theme, loopviz-projector, at a projector's 100x30: every text at 7:1.",
        [SceneSpec("tasks", "async"), SceneSpec("queue")],
        pause_at=3.1,
        size=(100, 30),
    ),
]


async def take(shot: Shot, out: Path) -> Path:
    session = Session(InProcessSource(shot.specs, virtual_time=True))
    session.source.runner.schedule.extend(shot.actions)
    loop = session.source.runner.loop
    loop.call_at(shot.pause_at, loop.pause)  # the loop is not running yet: safe from here
    app = LoopvizApp(session, theme=shot.theme)
    async with app.run_test(size=shot.size) as pilot:
        deadline = time.monotonic() + 30
        while not (loop.paused and loop.gate.waiting_at is not None):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{shot.name}: the loop never reached {shot.pause_at} s")
            await asyncio.sleep(0.02)
        for key in shot.keys:
            await pilot.press(key)
        await pilot.pause(0.3)  # several frames: every event is folded and drawn
        path = out / f"{shot.name}.svg"
        app.save_screenshot(str(path))
    return path


def to_png(svg: Path) -> Path | None:
    try:
        import cairosvg
    except ImportError:
        return None
    png = svg.with_suffix(".png")
    cairosvg.svg2png(url=str(svg), write_to=str(png))
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="screenshots", help="folder to write into")
    parser.add_argument("--only", help="make just this shot")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for shot in SHOTS:
        if args.only and shot.name != args.only:
            continue
        svg = asyncio.run(take(shot, out))
        png = to_png(svg)
        print(f"{svg}{'  ' + str(png) if png else ''}  {shot.caption}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
