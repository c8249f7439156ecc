"""The dashboard's layout, fixed by snapshots (pytest-textual-snapshot) at 80x24, 100x30 and
120x36.

Every state is deterministic: the deterministic scenes only (``tasks`` and ``queue``; the
``sockets`` scene waits on real sockets), a virtual clock (timers fire in order without waiting),
the loop paused at an exact loop time or stepped a known number of times, no stall detection
(it measures wall time), a fixed theme. Update with ``--snapshot-update`` and look at the SVGs in
``tests/__snapshots__/test_ui_snapshots/`` before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot

from loopviz.runner import SceneSpec, ScheduledAction
from loopviz.ui.app import LoopvizApp
from test_ui_support import make_app, make_session, press_and_settle, settle

TASKS = SceneSpec("tasks", "async", repeat=3.0)
QUEUE = SceneSpec("queue")
WIDE, PROJECTOR, NARROW = (120, 36), (100, 30), (80, 24)


def paused_at(
    seconds: float,
    *specs: SceneSpec,
    actions: tuple[ScheduledAction, ...] = (),
    theme: str = "textual-dark",
) -> LoopvizApp:
    session = make_session(*specs, paused=False, pause_at=seconds, actions=actions)
    return make_app(session, theme=theme)


def then(*keys: str, steps: int = 0) -> Callable[[Pilot], Awaitable[None]]:
    """Wait for the loop to stop, press ``n`` ``steps`` times (settling after each), then press
    ``keys`` (view keys: they do not move the loop)."""

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        for _ in range(steps):
            await press_and_settle(pilot, "n")
        for key in keys:
            await pilot.press(key)
        await settle(pilot)
        pilot.app.clear_notifications()  # toasts time out on the wall clock

    return run_before


@pytest.mark.parametrize("size", [WIDE, NARROW], ids=["120x36", "80x24"])
def test_dashboard_tasks_and_queue(snap_compare, size: tuple[int, int]) -> None:
    """All panels at 120x36; the tasks tab, output and narration at 80x24."""
    app = paused_at(3.1, TASKS, QUEUE)
    assert snap_compare(app, terminal_size=size, run_before=then())


def test_dashboard_stepped_from_the_start(snap_compare) -> None:
    """Paused at loop time 0, then 12 single iterations: the first interleaving steps."""
    session = make_session(SceneSpec("tasks", "async"), paused=True)
    app = make_app(session)
    assert snap_compare(app, terminal_size=WIDE, run_before=then(steps=12))


@pytest.mark.parametrize("size", [WIDE, NARROW], ids=["120x36", "80x24"])
def test_queue_backlog_with_the_consumer_down(snap_compare, size: tuple[int, int]) -> None:
    """The consumer went down at 2 s; at 6 s requests wait in the queue, none lost."""
    app = paused_at(6.0, QUEUE, actions=(ScheduledAction(2.0, "queue", "consumer-down"),))
    assert snap_compare(app, terminal_size=size, run_before=then("3"))


def test_tasks_zoomed_compare_variant(snap_compare) -> None:
    """``1`` zooms the tasks panel: async and sync side by side at 7 s."""
    app = paused_at(7.0, SceneSpec("tasks", "compare"))
    assert snap_compare(app, terminal_size=WIDE, run_before=then("1"))


def test_projector_theme_at_projector_size(snap_compare) -> None:
    app = paused_at(3.1, TASKS, QUEUE, theme="loopviz-projector")
    assert snap_compare(app, terminal_size=PROJECTOR, run_before=then())


@pytest.mark.parametrize("size", [WIDE, NARROW], ids=["120x36", "80x24"])
def test_help_screen(snap_compare, size: tuple[int, int]) -> None:
    app = paused_at(1.0, TASKS)
    assert snap_compare(app, terminal_size=size, run_before=then("question_mark"))


def test_too_small(snap_compare) -> None:
    app = paused_at(1.0, TASKS)
    assert snap_compare(app, terminal_size=(59, 17), run_before=then())
