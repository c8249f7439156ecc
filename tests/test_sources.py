"""The sources: a traced program in a child process, driven only through events and commands."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from loopviz.cli import scenes_source
from loopviz.runner import SceneSpec
from loopviz.session import Session
from loopviz.sources.child import ChildSource

EXAMPLES = Path(__file__).parents[1] / "examples"


def pump_until(session: Session, condition, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        session.pump()
        time.sleep(0.005)


def test_at_20x_a_busy_viewer_changes_nothing_the_program_does() -> None:
    """The dashboard's drawing once held the GIL of the traced loop's process: at 20x its
    steps looked long, were counted as stalls, and the queue's consumer fell behind. With the
    scenes in a process of their own, a viewer that keeps its own process busy (as drawing
    does) sees no stall and a queue that keeps up."""
    specs = [SceneSpec("tasks", repeat=1.0), SceneSpec("sockets", repeat=1.0), SceneSpec("queue")]
    session = Session(scenes_source(specs, speed=20.0, interactive=True), speed=20.0)
    stop = threading.Event()

    def draw() -> None:  # pure Python, holding this process's GIL most of the time
        while not stop.is_set():
            sum(i * i for i in range(20_000))

    drawer = threading.Thread(target=draw)
    session.start()
    drawer.start()
    try:
        pump_until(session, lambda: session.models.core.loop.now >= 200.0, "200 s of loop time")
    finally:
        stop.set()
        drawer.join(10)
        session.stop()
    assert not drawer.is_alive()
    models = session.models
    assert models.core.loop.stalls == 0
    assert models.core.loop.dropped == 0
    queue = models.queue
    assert queue.published >= 300
    assert queue.published - queue.acked <= 10, (queue.published, queue.acked)


def test_commands_reach_the_program_and_come_back_as_events() -> None:
    session = Session(scenes_source([SceneSpec("tasks")], speed=1.0, interactive=True))
    session.start()
    try:
        loop = session.models.core.loop
        pump_until(session, lambda: loop.iteration > 3, "the loop to run")
        session.toggle_pause()
        pump_until(session, lambda: loop.held_at is not None, "the loop held at its gate")
        before = loop.iteration
        time.sleep(0.2)
        session.pump()
        assert loop.iteration in (before, before + 1)  # it may have been about to start one
        held = loop.iteration
        session.step()
        pump_until(session, lambda: loop.iteration == held + 1 and loop.held_at, "one step")
        session.set_speed(5.0)
        pump_until(session, lambda: loop.speed == 5.0, "the new speed")
        session.toggle_pause()
        pump_until(session, lambda: loop.iteration > held + 5, "running again")
    finally:
        assert session.stop()
    assert session.status().over


def test_a_stopped_program_leaves_no_process() -> None:
    """q: the program gets SIGINT (its own clean-up runs), then is killed if it lingers;
    whatever it started in its session goes with it."""
    source = ChildSource(
        {"program": {"script": str(EXAMPLES / "slow_service.py"), "args": []}, "speed": 1.0},
        interactive=True,
    )
    session = Session(source)
    session.start()
    pump_until(
        session,
        lambda: any(t.name == "price client" for t in session.models.core.tasks.tasks.values()),
        "the clients",
    )
    pid = source.pid
    assert pid is not None
    session.toggle_pause()  # a paused program must still end
    pump_until(session, lambda: session.models.core.loop.held_at is not None, "paused")
    assert session.stop()
    assert source.proc is not None and source.proc.returncode is not None
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError("a process of the program's session is still there")
    status = session.status()
    assert status.over and status.state == "exited"


def test_the_dashboard_does_not_load_the_tracer_or_the_scenes() -> None:
    """The seam: ``ui/`` reads events only. Importing the whole dashboard loads no module of
    the traced loop, the scenes, or the child's side of the wire."""
    code = (
        "import sys, loopviz.ui.app, loopviz.session, loopviz.sources.child\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('loopviz'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    forbidden = (
        "loopviz.trace",
        "loopviz.scenes",
        "loopviz.runner",
        "loopviz.wire.child",
        "loopviz.wire.producer",
    )
    assert [name for name in loaded if name.startswith(forbidden)] == []
    assert "loopviz.ui.app" in loaded


def test_no_ui_module_names_the_tracer_or_the_scenes() -> None:
    ui = Path(__file__).parents[1] / "src" / "loopviz" / "ui"
    for path in ui.rglob("*.py"):
        text = path.read_text()
        for name in ("loopviz.trace", "loopviz.scenes", "loopviz.runner"):
            assert name not in text, f"{path} names {name}"
