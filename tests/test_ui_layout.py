"""The dashboard in the situations a classroom meets: a terminal too small, a projector, a loop
frozen by a blocking call, a scene that fails, a session paused from the start."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from rich.color import Color

from loopviz.runner import SceneSpec
from loopviz.scenes.tasks import TasksScene
from loopviz.ui.app import MIN_HEIGHT, MIN_WIDTH, LoopvizApp
from loopviz.ui.help import HelpScreen
from loopviz.ui.palette import STATE_SYMBOL, palette_for
from loopviz.ui.theme import PROJECTOR, THEMES
from test_ui_support import (
    in_process,
    make_app,
    make_session,
    panel_text,
    press_and_settle,
    screen_text,
    settle,
    shown,
    step_until,
    wait_for,
)

TASKS = SceneSpec("tasks", "async")
QUEUE = SceneSpec("queue")
SOCKETS = SceneSpec("sockets")
WIDE = (120, 36)


def loop_bar(app: LoopvizApp) -> str:
    return "\n".join(screen_text(app).splitlines()[:2])


# -- terminal size -------------------------------------------------------------------------------


async def test_too_small_a_terminal_says_how_large_it_must_be() -> None:
    app = make_app(make_session(TASKS))
    async with app.run_test(size=(MIN_WIDTH - 1, MIN_HEIGHT - 1)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert f"at least {MIN_WIDTH}x{MIN_HEIGHT}" in text
        assert f"this one is {MIN_WIDTH - 1}x{MIN_HEIGHT - 1}" in text
        assert not shown(app, "dashboard")
        # Just one dimension too small is too small as well.
        await pilot.resize_terminal(100, MIN_HEIGHT - 1)
        await wait_for(pilot, lambda: f"100x{MIN_HEIGHT - 1}" in screen_text(app), "the new size")
        # Large enough: the dashboard comes back, the message goes.
        await pilot.resize_terminal(MIN_WIDTH, MIN_HEIGHT)
        await wait_for(pilot, lambda: shown(app, "dashboard"), "the dashboard")
        assert "at least" not in screen_text(app)
        await press_and_settle(pilot, "n")  # and it works


async def test_80x24_shows_the_loop_bar_tabs_tasks_output_narration_and_keys() -> None:
    app = make_app(make_session(TASKS, QUEUE, paused=False, pause_at=2.1))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, "the loop to pause at 2.1 s")
        text = screen_text(app)
        lines = text.splitlines()
        assert "PAUSED" in lines[0] and "iteration" in lines[0]
        assert "phase" in lines[1] and "timers" in lines[1]
        assert "1 tasks" in lines[2] and "3 queue" in lines[2]  # the keys' numbers
        assert "select" not in lines[2]  # no sockets scene: no select panel
        for name in ("print_numbers", "print_alphabet", "broker", "api producer"):
            assert name in panel_text(app, "tasks")
        assert "sleep(0.25)" in panel_text(app, "tasks")
        assert "─ Output ─" in text
        assert "space pause" in lines[-1] and "? help" in lines[-1] and "q quit" in lines[-1]


async def test_projector_size_shows_all_panels_side_by_side() -> None:
    app = make_app(make_session(TASKS, SOCKETS, QUEUE, paused=False, pause_at=2.1))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, "the loop to pause at 2.1 s")
        for name in ("tasks", "select", "queue", "output", "narration", "loop-bar"):
            assert shown(app, name), name
        queue = panel_text(app, "queue")
        for words in ("published", "acked", "redelivered", "lost", "balance holds", "consumers"):
            assert words in queue
        tasks = panel_text(app, "tasks")
        for name in ("print_numbers", "print_alphabet", "sms consumer#1", "api producer"):
            assert name in tasks  # full task names, not cut


# -- themes and colour ---------------------------------------------------------------------------


def contrast(foreground: Color, background: Color) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""

    def luminance(colour: Color) -> float:
        def channel(value: int) -> float:
            v = value / 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        r, g, b = colour.get_truecolor()
        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_projector_theme_has_high_contrast_everywhere() -> None:
    palette = palette_for(PROJECTOR)
    background = Color.parse(PROJECTOR.background or "#000000")
    for name in palette.__dataclass_fields__:
        style = getattr(palette, name)
        assert style.color is not None and not style.dim, name
        behind = style.bgcolor or background
        assert contrast(style.color, behind) >= 7.0, f"{name} is below 7:1 (WCAG AAA)"


async def test_theme_option_selects_the_projector_theme() -> None:
    app = make_app(make_session(TASKS), theme="loopviz-projector")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert app.theme == "loopviz-projector"
        assert app.has_class("-projector")
        assert app.current_theme.background == "#000000"


def test_every_theme_the_command_line_takes_exists_in_the_app() -> None:
    """``--theme`` is checked against ``THEMES`` before the app starts (an unknown one is a
    one-line error, see test_cli): each of them must be one the app can show."""
    session = make_session(TASKS)
    try:
        app = LoopvizApp(session)
        app.register_theme(PROJECTOR)
        assert set(THEMES) == set(app.available_themes)
    finally:
        session.stop()


def test_every_task_state_has_its_own_symbol() -> None:
    states = ("running", "ready", "waiting", "done", "failed", "cancelled")
    symbols = [STATE_SYMBOL[state] for state in states]
    assert len(set(symbols)) == len(states)


async def test_no_information_is_carried_by_colour_alone() -> None:
    """With every colour stripped, the screen still says each state in words and symbols."""
    session = make_session(TASKS, QUEUE, paused=False, pause_at=2.1)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, "the loop to pause at 2.1 s")
        tasks = panel_text(app, "tasks")  # screen_text has no colour at all
        for task in session.models.core.tasks.rows()[:8]:
            assert f"{STATE_SYMBOL[task.state]} {task.state}" in tasks
        assert "█ ran" in tasks and "▓ blocked" in tasks  # the lanes' legend
        assert "▶ running  ● runnable  ○ waiting  ✓ done  × failed" in tasks
        queue = panel_text(app, "queue")
        assert "✓ balance holds" in queue and "#1 ▲ up" in queue
        await pilot.press("d")
        await step_until(pilot, lambda: session.models.queue.consumers_up == 0, "consumer down")
        assert "#1 ▼ DOWN" in panel_text(app, "queue")
        assert "‖ PAUSED" in loop_bar(app)


# -- a frozen loop -------------------------------------------------------------------------------


def frozen_seconds(app: LoopvizApp) -> float | None:
    found = re.search(r"FROZEN (\d+\.\d)s", loop_bar(app))
    return float(found.group(1)) if found else None


async def test_a_blocked_loop_shows_frozen_and_for_how_long_and_every_key_answers() -> None:
    # Each time.sleep in the blocking scene holds the loop thread 0.25 s of loop time: 1 s of
    # wall time at 0.25x. The UI must say so while it happens, and keep taking keys.
    session = in_process([SceneSpec("tasks", "blocking")], speed=0.25)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await wait_for(pilot, lambda: frozen_seconds(app) is not None, "the bar to say FROZEN")
        bar = loop_bar(app)
        assert re.search(r"in print_(numbers|alphabet): nothing else runs", bar)
        first = frozen_seconds(app)
        assert first is not None
        await wait_for(
            pilot, lambda: (frozen_seconds(app) or 0) >= first + 0.1, "the frozen time to grow"
        )
        # Loop seconds, as every time on screen: never more than the 0.25 s the call takes
        # (it once counted wall seconds, 4 times as many at 0.25x); the wall time beside it.
        found = re.search(r"FROZEN (\d+\.\d)s  (\d+\.\d)s wall", loop_bar(app))
        assert found, loop_bar(app)
        seen, wall = float(found.group(1)), float(found.group(2))
        assert seen <= 0.3
        assert wall == pytest.approx(4 * seen, abs=0.3)
        frozen_task = session.source.runner.loop.tracer.current
        assert frozen_task is not None  # the loop thread is inside a step

        started = time.monotonic()
        await pilot.press("plus")
        assert session.speed == 0.5
        await wait_for(pilot, lambda: "speed 0.5x" in loop_bar(app), "the new speed on screen")
        await pilot.press("minus")
        assert session.speed == 0.25
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.has_class("-zoom-tasks"), "zoom")
        await pilot.press("0")
        await wait_for(pilot, lambda: not app.screen.has_class("-zoom-tasks"), "all panels")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), "no help")
        await pilot.press("d", "a", "x", "b", "m")  # no queue scene: each one says so
        assert sum("queue scene is not running" in n.message for n in app._notifications) == 5
        await pilot.press("space")
        assert session.paused
        # The pause takes effect when the stuck step ends: the loop then waits at its gate.
        await wait_for(pilot, lambda: "‖ PAUSED" in loop_bar(app), "the bar to say PAUSED")
        assert frozen_seconds(app) is None
        await pilot.press("space")
        assert not session.paused
        gate = session.source.runner.loop.gate
        taken = gate.steps_taken
        await pilot.press("n")
        # The step request is queued at the gate, or the loop has already taken it.
        assert gate.stepping or gate.steps_taken > taken
        await pilot.press("t")
        await pilot.press("space")
        assert not session.paused
        answered = time.monotonic() - started
        # Every key above was handled while the traced loop sat in time.sleep, 1 s a step.
        assert answered < 15, f"keys took {answered:.1f}s"
        await wait_for(pilot, lambda: session.models.core.loop.stalls >= 1, "a loop_stalled event")
        assert "stalls" in loop_bar(app)
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to quit", timeout=30)
    # The loop thread ends once the time.sleep calls already under way return (a task is
    # cancelled only at an await): several 1 s steps at 0.25x, maybe longer than stop's wait.
    assert session.source.runner.join(timeout=20)
    assert session.source.runner.loop.is_closed()


# -- a failing scene -----------------------------------------------------------------------------


async def test_a_failing_scene_shows_its_error_and_the_app_keeps_running(monkeypatch) -> None:
    async def broken(self: TasksScene) -> None:
        await asyncio.sleep(0.5)
        raise RuntimeError("the scene broke")

    monkeypatch.setattr(TasksScene, "run_async", broken)
    session = make_session(TASKS, QUEUE, paused=False, pause_at=2.0)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, "the loop to pause at 2 s")
        problems = session.models.problems
        assert [p.scene for p in problems] == ["tasks"]
        assert "RuntimeError: the scene broke" in problems[0].error
        assert shown(app, "problems")
        bar = panel_text(app, "problems")
        assert "× SCENE FAILED" in bar and "tasks: RuntimeError: the scene broke" in bar
        assert "tasks failed" in panel_text(app, "output")
        assert any("the scene broke" in n.message for n in app._notifications)
        # The other scene runs on, and every key still works.
        published = session.models.queue.published
        await step_until(pilot, lambda: session.models.queue.published > published, "a new request")
        assert app.is_running
        # A restart starts over without the failure (it comes back once the scene fails again).
        await pilot.press("r")
        await settle(pilot, "the restarted loop")
        assert not session.models.problems and not shown(app, "problems")


# -- starting paused -----------------------------------------------------------------------------


async def test_a_session_paused_from_the_start() -> None:
    """``loopviz --paused``: the loop stands at its first iteration, nothing has run.

    Note: ``SceneRunner.start`` waits up to 5 s for the scenes' main task, which a loop paused
    from the start only runs at the first step; this test is slow until the runner stops
    waiting for it when paused."""
    session = in_process([TASKS], paused=True, virtual_time=True)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert session.models.core.loop.iteration == 0
        assert "‖ PAUSED" in loop_bar(app)
        await step_until(pilot, lambda: session.models.core.loop.iteration >= 2, "two steps")


async def test_the_select_panel_keeps_the_history_of_the_threads_select_calls() -> None:
    """Stepping the notes' create_nonblocking: every call stays on screen with what it returned
    (it used to show only the latest one)."""
    from test_ui_support import press_and_settle

    session = make_session(
        SceneSpec("sockets", "select", {"rounds": 1}), virtual_time=False, speed=2
    )
    app = make_app(session, focus="sockets")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        for _ in range(60):
            returned = [c for c in session.models.raw_selects if c.returned is not None]
            if len(returned) >= 4:
                break
            await press_and_settle(pilot, "t")
        await pilot.press("2")  # the select panel, zoomed: as a class would look at it
        await settle(pilot)
        text = panel_text(app, "select")
        assert "#1 select([client#1], [client#1], [client#1], 0.5)" in text
        assert "→ readable [] writable [client#1]" in text
        assert text.count("→ timed out after 0.50s") == 2, text
        assert "#4 select([client#1], [], [client#1], 0.5)" in text
        assert "→ readable [client#1] writable []" in text
        lines = [(line.task, line.text) for line in session.models.output]
        assert ("client#1 thread", "Non Blocking - sending\n") in lines, lines


async def test_the_compare_results_stay_pinned_while_the_output_scrolls_on() -> None:
    """async finishes at 6.5 s, sync at 13 s; by 18 s the repeated run has printed far more
    than the output panel holds, and both results are still on screen."""
    session = make_session(SceneSpec("tasks", "compare", repeat=3.0), pause_at=18.0)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        output = panel_text(app, "output")
        assert "finished in (loop time):" in output
        assert "tasks async 6.50 s" in output and "tasks sync 13.00 s" in output
        assert "finished in 6.50 s" not in output  # the line itself scrolled away long ago


def test_the_dashboard_opens_in_the_theme_that_keeps_7_to_1() -> None:
    """Textual's own themes fall below 7:1 (textual-dark's blue is about 4.6:1): the dashboard
    opens in the projector theme, whose every style the test above holds to 7:1."""
    from loopviz.ui.theme import DEFAULT_THEME

    assert PROJECTOR.name == DEFAULT_THEME
    session = make_session(TASKS)
    try:
        assert LoopvizApp(session)._theme_name == PROJECTOR.name
    finally:
        session.stop()


@pytest.mark.parametrize("size", [WIDE, (80, 24)], ids=["120x36", "80x24"])
async def test_the_suspended_line_and_its_file_line_are_never_cut(size: tuple[int, int]) -> None:
    """All three scenes side by side at 120x36 (the tasks panel about 70 columns) and one
    panel at 80x24: the await expression and its file:line stay whole; the extra columns and
    the awaits column (its call is in that line too) give way first."""
    app = make_app(make_session(TASKS, SOCKETS, QUEUE, paused=False, pause_at=2.1))
    async with app.run_test(size=size) as pilot:
        await settle(pilot, "the loop to pause at 2.1 s")
        tasks = panel_text(app, "tasks")
        assert re.search(r"await asyncio\.sleep\(0\.25\)  tasks\.py:\d+", tasks), tasks


def test_help_explains_every_column_and_term_the_panels_show() -> None:
    """Each column header and queue word on screen has a line in the help's glossary."""
    from loopviz.ui.help import GLOSSARY

    explained = " / ".join(term for _, term, _ in GLOSSARY)
    shown = [
        "phase", "run queue", "timers", "FROZEN", "stalls",
        "state", "awaits", "suspended at", "steps", "busy", "waiting", "lanes",
        "fd", "label", "watch", "r/w", "last r/w", "thread's select calls",
        "ready", "unacked", "ack", "manual ack", "auto ack", "no queue", "at-least-once",
        "redelivered", "duplicates", "lost", "failed requests", "balance holds",
        "oldest waits", "drains in",
    ]  # fmt: skip
    missing = [term for term in shown if term not in explained]
    assert missing == []
