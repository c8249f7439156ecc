"""Every key of the dashboard (issue 5, "Keys"), pressed in a running app: what it does to the
traced loop and the models, and what the screen shows afterwards.

The sessions run on a virtual clock, paused: nothing moves unless a key moves it, so each
assertion checks exactly one key's effect.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loopviz.runner import SceneSpec
from loopviz.session import SPEEDS
from loopviz.trace import MAX_SPEED, MIN_SPEED
from loopviz.ui.app import HUNG_UP, LoopvizApp
from loopviz.ui.help import HelpScreen
from test_ui_support import (
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
NARROW = (80, 24)


def loop_bar(app: LoopvizApp) -> str:
    """The first two lines of the screen: the loop bar."""
    return "\n".join(screen_text(app).splitlines()[:2])


def total_steps(app: LoopvizApp) -> int:
    return sum(task.steps for task in app.session.models.core.tasks.tasks.values())


# -- the loop ------------------------------------------------------------------------------------


async def test_space_pauses_and_resumes_the_loop() -> None:
    # A real clock: pausing must stop loop time, resuming must let it run on.
    session = make_session(TASKS, paused=False, virtual_time=False)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        models = session.models.core.loop
        await wait_for(pilot, lambda: models.now > 0.1, "loop time to run")
        assert "RUNNING" in loop_bar(app)

        await pilot.press("space")
        assert session.paused
        await settle(pilot)
        assert "PAUSED" in loop_bar(app) and "RUNNING" not in loop_bar(app)
        assert models.paused  # the loop itself said so on the event stream
        stopped_at = models.now
        await pilot.pause(0.3)
        assert models.now == stopped_at, "loop time moved while paused"

        await pilot.press("space")
        assert not session.paused
        await wait_for(pilot, lambda: models.now > stopped_at + 0.05, "loop time to move again")
        await wait_for(pilot, lambda: "RUNNING" in loop_bar(app), "the loop bar to say RUNNING")
        assert not models.paused


@pytest.mark.parametrize("key", ["n", "right"])
async def test_n_and_right_run_exactly_one_loop_iteration(key: str) -> None:
    session = make_session(TASKS, QUEUE)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await press_and_settle(pilot, key, key)  # past the start
        loop = session.models.core.loop
        for _ in range(3):
            before = loop.iteration
            await press_and_settle(pilot, key)
            assert loop.iteration == before + 1
            assert session.paused
            bar = loop_bar(app)
            assert f"iteration {before + 1}" in bar
            assert "PAUSED" in bar


async def test_t_runs_to_the_next_task_switch() -> None:
    session = make_session(TASKS)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await step_until(pilot, lambda: total_steps(app) >= 4, "the tasks to start")
        tasks = session.models.core.tasks.tasks
        for _ in range(4):
            before = {task.id: task.steps for task in tasks.values()}
            await press_and_settle(pilot, "t")
            stepped = [task for task in tasks.values() if task.steps != before.get(task.id, 0)]
            assert len(stepped) == 1, "t must run exactly one task step"
            assert stepped[0].steps == before.get(stepped[0].id, 0) + 1
            # The narration says which task just ran and gave control back.
            sentence = session.models.core.narration.sentences[-1]
            assert stepped[0].name in sentence
            assert sentence[:60] in screen_text(app)


async def test_plus_and_minus_step_the_speed_within_its_bounds() -> None:
    session = make_session(TASKS)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert session.speed == 1.0
        await pilot.press("plus")
        assert session.speed == SPEEDS[SPEEDS.index(1.0) + 1]
        for _ in range(len(SPEEDS) + 2):  # past the top: it stays there
            await pilot.press("plus")
        assert session.speed == MAX_SPEED == 20.0
        await wait_for(pilot, lambda: "speed 20x" in loop_bar(app), "the bar to say 20x")
        await wait_for(pilot, lambda: session.models.core.loop.speed == 20.0, "a clock event")

        await pilot.press("minus")
        assert session.speed == 10.0
        for _ in range(len(SPEEDS) + 2):  # past the bottom: it stays there
            await pilot.press("minus")
        assert session.speed == MIN_SPEED == 0.05
        await wait_for(pilot, lambda: "speed 0.05x" in loop_bar(app), "the bar to say 0.05x")
        await pilot.press("equals_sign")  # "+" without shift
        assert session.speed == 0.1


# -- the view ------------------------------------------------------------------------------------


async def test_1_2_3_zoom_one_panel_and_0_shows_all() -> None:
    session = make_session(TASKS, SOCKETS, QUEUE)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        panels = ("tasks", "select", "queue")
        assert all(shown(app, name) for name in panels)
        assert not shown(app, "tabs")
        for key, name in (("1", "tasks"), ("2", "select"), ("3", "queue")):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen.has_class(f"-zoom-{name}")
            assert [p for p in panels if shown(app, p)] == [name]
            assert app.query_one(f"#{name}").size.width > 100  # it fills the width
            assert f"─ {name.title()} ─" in screen_text(app)
        await pilot.press("3")  # the zoomed panel's key again: back to all
        await pilot.pause()
        assert all(shown(app, name) for name in panels)
        await pilot.press("2", "0")
        await pilot.pause()
        assert all(shown(app, name) for name in panels)
        text = screen_text(app)
        assert all(f"─ {name.title()} ─" in text for name in panels)


async def test_narrow_terminal_switches_panels_with_1_2_3() -> None:
    session = make_session(TASKS, SOCKETS, QUEUE)
    app = make_app(session)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        assert shown(app, "tabs")
        assert "1 tasks" in screen_text(app) and "widen to 100 columns" in screen_text(app)
        panels = ("tasks", "select", "queue")
        assert [p for p in panels if shown(app, p)] == ["tasks"]
        for key, name in (("2", "select"), ("3", "queue"), ("1", "tasks")):
            await pilot.press(key)
            await pilot.pause()
            assert [p for p in panels if shown(app, p)] == [name]
            assert f"─ {name.title()} ─" in screen_text(app)
        # Widening the terminal brings every panel back; narrowing it again, the tabs.
        await pilot.resize_terminal(*WIDE)
        await wait_for(pilot, lambda: all(shown(app, p) for p in panels), "all panels")
        assert not shown(app, "tabs")
        await pilot.resize_terminal(*NARROW)
        await wait_for(pilot, lambda: shown(app, "tabs"), "the tabs")
        assert [p for p in panels if shown(app, p)] == ["tasks"]


async def test_question_mark_opens_help_and_escape_closes_it() -> None:
    session = make_session(TASKS)
    app = make_app(session)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        for close in ("escape", "question_mark", "q"):
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            text = screen_text(app)
            assert "loopviz keys" in text
            assert "pause / resume" in text and "step one loop iteration" in text
            await pilot.press(close)
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen), f"{close} must close the help"
            assert app.is_running  # q closes the help; it does not quit
        # The loop keys still work underneath.
        await press_and_settle(pilot, "n")


async def test_q_quits_and_stops_the_traced_loop() -> None:
    session = make_session(TASKS, QUEUE)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await press_and_settle(pilot, "n")
        thread = session.source.runner._thread
        assert thread is not None and thread.is_alive()
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert app.return_code in (0, None)
    assert not session.source.runner.running and not thread.is_alive()
    assert session.source.runner.loop.is_closed()


async def test_ctrl_c_quits_too() -> None:
    session = make_session(TASKS)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert not session.source.runner.running and session.source.runner.loop.is_closed()


async def test_r_restarts_the_scenes_from_loop_time_zero() -> None:
    session = make_session(TASKS, QUEUE, paused=False, pause_at=2.0)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, "the loop to pause at 2 s")
        models = session.models
        old_runner = session.source.runner
        assert models.core.loop.now >= 2.0 and models.queue.published > 0
        assert models.output
        await pilot.press("r")
        await settle(pilot, "the restarted loop to stop at its gate")
        assert session.source.runner is not old_runner
        assert not old_runner.running and old_runner.loop.is_closed()
        fresh = session.models
        assert fresh is not models  # everything shown before is forgotten
        assert fresh.core.loop.now < 0.01
        assert fresh.queue.published == 0 and not fresh.output
        assert session.paused  # a paused session stays paused across a restart
        assert "loop time 0.00s" in loop_bar(app)
        # And the new loop steps like the old one did.
        await step_until(pilot, lambda: fresh.core.loop.iteration >= 3, "three iterations")


# -- the queue scene -----------------------------------------------------------------------------


def queue_panel(app: LoopvizApp) -> str:
    return panel_text(app, "queue")


async def test_d_takes_the_consumer_down_and_brings_it_back() -> None:
    session = make_session(QUEUE)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        stats = session.models.queue
        await step_until(pilot, lambda: stats.consumers_up == 1, "the consumer to come up")
        assert "#1 ▲ up" in queue_panel(app)

        await pilot.press("d")
        await step_until(pilot, lambda: stats.consumers_up == 0, "the consumer to go down")
        assert stats.consumers[1].state == "down"
        assert "#1 ▼ DOWN" in queue_panel(app)

        await pilot.press("d")
        await step_until(pilot, lambda: stats.consumers_up == 1, "the consumer to come back")
        assert "#1 ▲ up" in queue_panel(app) and "DOWN" not in queue_panel(app)


async def test_a_adds_and_x_removes_a_consumer() -> None:
    session = make_session(QUEUE)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        stats = session.models.queue
        await step_until(pilot, lambda: stats.consumers_up == 1, "the consumer to come up")
        await pilot.press("a")
        await step_until(pilot, lambda: stats.consumers_up == 2, "a second consumer")
        assert "#2 ▲ up" in queue_panel(app)
        await pilot.press("a")
        await step_until(pilot, lambda: stats.consumers_up == 3, "a third consumer")

        await pilot.press("x")  # removes the highest-numbered one, once it has finished its work
        await step_until(pilot, lambda: 3 not in stats.consumers, "consumer #3 to leave")
        assert sorted(stats.consumers) == [1, 2] and stats.consumers_up == 2
        assert "#3" not in queue_panel(app)


async def test_b_sends_a_burst_of_requests() -> None:
    session = make_session(QUEUE)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        stats = session.models.queue
        await step_until(pilot, lambda: stats.consumers_up == 1, "the queue scene to start")
        before = stats.published
        await pilot.press("b")
        await step_until(pilot, lambda: stats.published >= before + 10, "the burst")
        # The burst arrives at once (a regular request may come along in the same iteration).
        assert before + 10 <= stats.published <= before + 11
        assert stats.ready >= 8  # one consumer cannot take them all at once: a backlog
        assert f"published {stats.published}" in queue_panel(app)


async def test_m_cycles_the_ack_mode_manual_auto_none() -> None:
    session = make_session(QUEUE)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        stats = session.models.queue
        await step_until(pilot, lambda: stats.started is not None, "the queue scene to start")
        assert stats.mode == "manual" and "mode manual ack" in queue_panel(app)
        for mode, words in (("auto", "mode auto ack"), ("none", "mode no queue")):
            await pilot.press("m")
            await step_until(pilot, lambda mode=mode: stats.mode == mode, f"mode {mode}")
            assert words in queue_panel(app)
        await pilot.press("m")
        await step_until(pilot, lambda: stats.mode == "manual", "back to manual")
        assert "mode manual ack" in queue_panel(app)


async def test_queue_keys_without_the_queue_scene_say_so() -> None:
    session = make_session(TASKS)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert not shown(app, "queue")  # no queue scene, no queue panel
        await pilot.press("d", "b", "3")
        await pilot.pause()
        assert app.is_running
        messages = [n.message for n in app._notifications]
        assert any("queue scene is not running" in m for m in messages)


async def test_a_hang_up_stops_the_loop_and_exits() -> None:
    """What SIGHUP (the terminal closed) does: the traced loop stops first, then the app."""
    session = make_session(TASKS, QUEUE)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        app._signalled(HUNG_UP)
        timer = app.hang_up_timer
        assert timer is not None
        timer.cancel()  # the last resort (os._exit) must not fire in a test run
        assert not session.source.runner.running and session.source.runner.loop.is_closed()
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert app.return_code == 129


@pytest.mark.parametrize(("leave", "status"), [("sigterm", 143), ("sigint", 130), ("ctrl+c", 130)])
async def test_sigterm_sigint_and_ctrl_c_stop_the_loop_and_exit_with_their_status(
    leave: str, status: int
) -> None:
    """What ``kill``, ``timeout`` and Ctrl+C do: the loop stops, the app exits with 128 + the
    signal (Ctrl+C reads as SIGINT, as a shell would report it)."""
    session = make_session(TASKS)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        if leave == "ctrl+c":
            await pilot.press("ctrl+c")
        else:
            app._signalled(status)
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert app.return_code == status
    assert not session.source.runner.running and session.source.runner.loop.is_closed()


async def test_a_signal_while_the_app_starts_is_acted_on_once_it_can_restore_the_terminal() -> None:
    """``kill`` a quarter second after launch: run_dashboard notes the signal until the app's
    loop takes signals, and the app then leaves as it would have, with the signal's status."""
    session = make_session(TASKS)
    app = make_app(session)
    app.early_status = 143
    async with app.run_test(size=WIDE) as pilot:
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert app.return_code == 143
    assert not session.source.runner.running


async def test_s_saves_the_screen_as_a_new_svg_and_never_replaces_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    session = make_session(TASKS)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await pilot.press("s")  # the same second: a second name, not the first file replaced
        await pilot.pause()
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert len(saved) == 2 and all(re.fullmatch(r"loopviz-[\d-]+\.svg", n) for n in saved)
    for name in saved:
        svg = (tmp_path / name).read_text()
        assert svg.startswith("<svg") and "loop" in svg and "time" in svg


@pytest.mark.parametrize(
    ("specs", "panels"),
    [
        ((TASKS,), ("tasks",)),
        ((TASKS, QUEUE), ("tasks", "queue")),
        ((SOCKETS,), ("tasks", "select")),
    ],
    ids=["tasks", "tasks-queue", "sockets"],
)
async def test_a_scene_opens_on_the_panels_it_teaches_with(
    specs: tuple[SceneSpec, ...], panels: tuple[str, ...]
) -> None:
    """``loopviz tasks`` used to open with an empty Select panel on 40% of the screen; the
    tasks panel now takes the whole width. The keys keep their panels' numbers (2 is select)."""
    session = make_session(*specs)
    app = make_app(session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert [p for p in ("tasks", "select", "queue") if shown(app, p)] == list(panels)
        if panels == ("tasks",):
            assert app.query_one("#tasks").size.width > 100
        await pilot.press("2")
        await pilot.pause()
        assert app.screen.has_class("-zoom-select") == ("select" in panels)
