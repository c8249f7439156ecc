"""Helpers for the dashboard tests (no tests here): deterministic sessions, bounded waits, and
the screen as text.

Every wait polls a condition with a deadline instead of sleeping a fixed time, so a loaded
2-core machine only makes a test slower, never wrong.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from loopviz.runner import SceneSpec, ScheduledAction
from loopviz.session import Session
from loopviz.sources.in_process import InProcessSource
from loopviz.ui.app import LoopvizApp

#: Generous: a condition normally holds within a few frames.
TIMEOUT = 20.0
POLL = 0.02


def quiet_stalls(session: Session) -> Session:
    """No stall detection: whether a step takes 10 ms or 200 ms of wall time on a loaded machine
    must not change what the screen shows (stalls are tested with a real blocking scene)."""
    tracer = session.source.runner.loop.tracer
    tracer.stall_threshold = 0
    tracer.stall_limit = float("inf")
    return session


def in_process(
    specs: list[SceneSpec], *, speed: float = 1.0, paused: bool = False, virtual_time: bool = False
) -> Session:
    """A session on scenes in a thread of the test's process (``InProcessSource``)."""
    source = InProcessSource(specs, speed=speed, paused=paused, virtual_time=virtual_time)
    return Session(source, speed=speed, paused=paused)


def make_session(
    *specs: SceneSpec,
    paused: bool = True,
    virtual_time: bool = True,
    speed: float = 1.0,
    pause_at: float | None = None,
    actions: tuple[ScheduledAction, ...] = (),
) -> Session:
    """A session on a virtual clock (timers fire at once, in order: every run is the same),
    paused at loop time 0 (``paused``), or running until loop time ``pause_at`` and pausing
    there.

    "Paused" pauses from the loop's first iteration rather than constructing the session
    paused: ``SceneRunner.start`` waits (5 s) for its main task, which a loop paused from the
    start never runs (see ``test_ui_layout.test_a_session_paused_from_the_start``).
    """
    session = quiet_stalls(in_process(list(specs), speed=speed, virtual_time=virtual_time))
    session.source.runner.schedule.extend(actions)
    if paused and pause_at is None:
        pause_at = 0.0
    if pause_at is not None:
        loop = session.source.runner.loop
        loop.call_at(pause_at, loop.pause)  # the loop is not running yet: safe from here
    return session


def make_app(
    session: Session, *, theme: str = "textual-dark", focus: str | None = None
) -> LoopvizApp:
    """The dashboard in a fixed theme (the default must not depend on the environment)."""
    return LoopvizApp(session, theme=theme, focus=focus)


async def wait_for(
    pilot: Pilot, condition: Callable[[], object], what: str, timeout: float = TIMEOUT
) -> None:
    """Let the app run until ``condition()`` is true; fail, saying ``what``, after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await pilot.pause(POLL)


def loop_idle(session: Session) -> bool:
    """The traced loop stands at its step gate with nothing left to do for the last command."""
    gate = session.source.runner.loop.gate
    return session.paused and not gate.stepping and gate.waiting_at is not None


async def settle(pilot: Pilot, what: str = "the loop to stop at its gate") -> None:
    """Wait until the loop stands still and the app has folded and drawn all it recorded."""
    app = pilot.app
    assert isinstance(app, LoopvizApp)
    session = app.session
    await wait_for(pilot, lambda: loop_idle(session), what)
    # Two frames after the loop stopped, every event it wrote has been folded and drawn.
    frames = app.frames
    await wait_for(pilot, lambda: app.frames >= frames + 2, "two frames")
    await pilot.pause()


async def press_and_settle(pilot: Pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot, f"the loop to stop after {key!r}")


async def step_until(
    pilot: Pilot, condition: Callable[[], object], what: str, max_steps: int = 200
) -> int:
    """Press ``n`` (one loop iteration) until ``condition()`` holds; return how many it took."""
    await settle(pilot)
    for steps in range(max_steps + 1):
        if condition():
            return steps
        await press_and_settle(pilot, "n")
    raise AssertionError(f"{what} did not happen within {max_steps} loop iterations")


def screen_text(app: App[object]) -> str:
    """What the terminal shows, as plain text (the same render ``export_screenshot`` uses)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    update = app.screen._compositor.render_update(  # no public text export exists
        full=True, screen_stack=app._background_screens
    )
    console.print(update)
    return console.export_text()


def shown(app: App[object], widget_id: str) -> bool:
    """Whether a widget takes up room on screen (it and all its containers are displayed)."""
    widget = app.query_one(f"#{widget_id}")
    return widget.region.area > 0 and all(node.display for node in widget.ancestors_with_self)


def panel_text(app: App[object], widget_id: str) -> str:
    """The part of the screen one widget covers, as plain text."""
    region = app.query_one(f"#{widget_id}").region
    lines = screen_text(app).splitlines()[region.y : region.bottom]
    return "\n".join(line[region.x : region.right] for line in lines)
