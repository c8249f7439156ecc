"""Key-press latency of the dashboard while the tasks, sockets and queue scenes run at 20x.

Each key is injected as a real key event into the running app (headless, 120x36) and timed
until its effect is visible, in three stages:

  action   the binding's action ran (the app's own event loop answered);
  effect   the program (a child process, as in the dashboard) did it, its event came back
           over the pipe, and a frame folded it into the models (pause: the loop stopped at
           its gate, ``loop_held``; speed: its clock changed, ``clock``; d: the queue scene's
           consumer.down/up event);
  screen   that frame asked the panels to redraw (Textual paints right after, in the same
           event-loop turn).

Target (issue 5): every key takes effect within 100 ms. The run also reports how long each
frame (fold a batch of events + refresh the panels) took.

    python benchmarks/ui_latency.py [--presses N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from loopviz.cli import scenes_source
from loopviz.runner import SceneSpec
from loopviz.session import Session
from loopviz.ui import app as app_module
from loopviz.ui.app import LoopvizApp

TARGET_MS = 100.0
SPEED = 20.0


class TimedApp(LoopvizApp):
    """The dashboard, noting when actions run and how long each frame takes."""

    CSS_PATH = str(Path(app_module.__file__).with_name("loopviz.tcss"))

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.action_times: list[float] = []
        self.frame_ends: list[float] = []
        self.frame_seconds: list[float] = []
        #: The effect being waited for, and (pump end, frame end) of the frame that showed it.
        self.watching: Callable[[], bool] | None = None
        self.seen: tuple[float, float] | None = None

    def frame(self) -> None:
        started = time.perf_counter()
        self.session.pump()  # as the frame does first; timed apart from the refresh
        pumped = time.perf_counter()
        super().frame()
        ended = time.perf_counter()
        self.frame_seconds.append(ended - started)
        self.frame_ends.append(ended)
        if self.watching is not None and self.seen is None and self.watching():
            self.seen = (pumped, ended)

    def action_toggle_pause(self) -> None:
        self.action_times.append(time.perf_counter())
        super().action_toggle_pause()

    def action_faster(self) -> None:
        self.action_times.append(time.perf_counter())
        super().action_faster()

    def action_slower(self) -> None:
        self.action_times.append(time.perf_counter())
        super().action_slower()

    def action_consumer_toggle(self) -> None:
        self.action_times.append(time.perf_counter())
        super().action_consumer_toggle()


async def wait_until(check: Callable[[], bool], timeout: float = 2.0) -> float:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError("the key had no effect within 2 s")
        await asyncio.sleep(0.0005)
    return time.perf_counter()


async def press(app: TimedApp, key: str, effect: Callable[[], bool]) -> tuple[float, float, float]:
    """Inject ``key``; return (action, effect, screen) latencies in milliseconds."""
    actions_before = len(app.action_times)
    app.watching, app.seen = effect, None
    pressed = time.perf_counter()
    app.simulate_key(key)
    await wait_until(lambda: len(app.action_times) > actions_before)
    action = app.action_times[actions_before]
    await wait_until(lambda: app.seen is not None)
    assert app.seen is not None
    effected, shown = app.seen
    app.watching = None
    return tuple((x - pressed) * 1000 for x in (action, effected, shown))  # type: ignore[return-value]


async def measure(presses: int) -> dict[str, object]:
    specs = [SceneSpec("tasks", repeat=1.0), SceneSpec("sockets", repeat=1.0), SceneSpec("queue")]
    session = Session(scenes_source(specs, speed=SPEED, interactive=True), speed=SPEED)
    app = TimedApp(session)
    results: dict[str, list[tuple[float, float, float]]] = {"space": [], "+/-": [], "d": []}
    async with app.run_test(size=(120, 36)):
        await asyncio.sleep(2.0)  # let every scene get going
        loop = session.models.core.loop
        queue = session.models.queue
        for i in range(presses):
            # space: pause (the loop stops at its gate), then resume (it leaves the gate).
            results["space"].append(await press(app, "space", lambda: loop.held_at is not None))
            results["space"].append(await press(app, "space", lambda: not loop.paused))
            # - then +: the loop's clock runs at the new speed.
            results["+/-"].append(await press(app, "minus", lambda: loop.speed < SPEED))
            results["+/-"].append(await press(app, "plus", lambda: loop.speed == SPEED))
            # d: the consumer goes down (and comes back), as the folded queue model shows.
            want_down = i % 2 == 0
            results["d"].append(
                await press(
                    app,
                    "d",
                    lambda want=want_down: (
                        any(v.state == "down" for v in queue.consumers.values()) == want
                    ),
                )
            )
            await asyncio.sleep(0.1)
        frames = sorted(app.frame_seconds)
        events = session.events_seen
        loop_time = session.models.core.loop.now
    report: dict[str, object] = {"speed": SPEED, "presses": presses, "target_ms": TARGET_MS}
    for key, rows in results.items():
        report[key] = {
            stage: {
                "median_ms": round(statistics.median(values), 1),
                "p95_ms": round(values[int(0.95 * (len(values) - 1))], 1),
                "max_ms": round(values[-1], 1),
            }
            for stage, values in zip(
                ("action", "effect", "screen"),
                (sorted(column) for column in zip(*rows, strict=True)),
                strict=True,
            )
        }
    report["frame"] = {
        "median_ms": round(statistics.median(frames) * 1000, 2),
        "p95_ms": round(frames[int(0.95 * (len(frames) - 1))] * 1000, 2),
        "max_ms": round(frames[-1] * 1000, 2),
        "frames": len(frames),
    }
    report["events_folded"] = events
    report["loop_seconds"] = round(loop_time, 1)
    worst = max(report[key]["screen"]["max_ms"] for key in results)  # type: ignore[index]
    report["worst_screen_ms"] = worst
    report["within_target"] = worst <= TARGET_MS
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--presses", type=int, default=10, help="rounds of key presses (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report = asyncio.run(measure(max(2, args.presses)))
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"all three scenes at {SPEED:g}x; {report['events_folded']} events folded over "
        f"{report['loop_seconds']} s of loop time"
    )
    print(
        f"{'key':6} {'stage':7} {'median':>8} {'p95':>8} {'max':>8}   (ms, target <= {TARGET_MS:g})"
    )
    for key in ("space", "+/-", "d"):
        for stage, row in report[key].items():  # type: ignore[attr-defined]
            print(f"{key:6} {stage:7} {row['median_ms']:>8} {row['p95_ms']:>8} {row['max_ms']:>8}")
    frame = report["frame"]
    print(
        f"frame (fold + refresh): median {frame['median_ms']} ms, p95 {frame['p95_ms']} ms, "  # type: ignore[index]
        f"max {frame['max_ms']} ms over {frame['frames']} frames"
    )  # type: ignore[index]
    print(
        f"worst key-to-screen: {report['worst_screen_ms']} ms -> "
        f"{'within' if report['within_target'] else 'OVER'} the {TARGET_MS:g} ms target"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
