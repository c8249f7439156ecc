"""The dashboard on the user's own program (``loopviz run``), driven by Pilot: a child process
runs the program; the app only reads its events."""

from __future__ import annotations

from pathlib import Path

from loopviz.cli_run import child_config
from loopviz.session import Session
from loopviz.sources.child import ChildSource
from loopviz.ui.app import LoopvizApp
from test_ui_support import screen_text, wait_for

WIDE = (120, 36)


def run_session(script: Path, speed: float = 1.0) -> Session:
    args = type("Args", (), {"headless": False, "speed": speed, "paused": False})()
    config = child_config(args, {"script": str(script), "args": []})
    return Session(ChildSource(config, interactive=True), speed=speed)


async def test_a_program_shows_its_panels_and_says_how_it_ended(tmp_path: Path) -> None:
    script = tmp_path / "short.py"
    script.write_text(
        "import asyncio\n"
        "async def tick(n):\n"
        "    for i in range(n):\n"
        "        print('tick', i)\n"
        "        await asyncio.sleep(0.05)\n"
        "async def main():\n"
        "    await asyncio.gather(tick(3), tick(12))\n"
        "asyncio.run(main())\n"
        "raise SystemExit(3)\n"
    )
    session = run_session(script)
    app = LoopvizApp(session, theme="textual-dark")
    async with app.run_test(size=WIDE) as pilot:
        await wait_for(pilot, lambda: "short.py:5" in screen_text(app), "where its tasks wait")
        await wait_for(
            pilot, lambda: "the program exited with status 3" in screen_text(app), "the end"
        )
        screen = screen_text(app)
        assert "ENDED" in screen
        assert "tick 11" in screen  # what it printed, in the output panel
        footer = screen.splitlines()[-1]
        assert "quit" in footer and "consumer" not in footer and "burst" not in footer
        assert app.panels == ("tasks", "select")
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert session.status().over
