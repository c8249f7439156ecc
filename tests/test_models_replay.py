"""Models rebuilt from a recorded JSONL file equal the models fed live."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from loopviz.models.loop_state import LoopState
from loopviz.models.narration import Narration
from loopviz.models.replay import Models, fold, load_models
from loopviz.models.selector import SelectorState
from loopviz.models.tasks import TaskTable
from loopviz.models.timeline import Timeline
from loopviz.scenes.tasks import TasksScene
from loopviz.trace import Event
from tracing import run_traced


async def _scene(variant: str) -> None:
    await TasksScene(asyncio.get_running_loop(), variant).run()


async def _sockets() -> None:
    loop = asyncio.get_running_loop()
    client, server = socket.socketpair()
    with client, server:
        client.setblocking(False)
        server.setblocking(False)
        loop.label_fd(client, "client#1")  # type: ignore[attr-defined]
        reader = asyncio.create_task(loop.sock_recv(client, 16), name="reader")
        await asyncio.sleep(0.05)
        await loop.sock_sendall(server, b"hi")
        await reader


def record(path: Path, events: list[Event]) -> None:
    path.write_text("".join(event.to_json() + "\n" for event in events), encoding="utf-8")


RUNS = {
    "async": (lambda: _scene("async"), {"virtual_time": True}),
    "sync": (lambda: _scene("sync"), {"virtual_time": True}),
    "compare": (lambda: _scene("compare"), {"virtual_time": True}),
    "blocking": (lambda: _scene("blocking"), {"virtual_time": True, "speed": 20}),
    # A real clock: timestamps carry more digits live than the file keeps.
    "async-real-clock": (lambda: _scene("async"), {"speed": 20}),
    "sockets-real-clock": (_sockets, {}),
}


@pytest.mark.parametrize("run", list(RUNS))
def test_models_from_a_file_equal_the_models_fed_live(run: str, tmp_path: Path) -> None:
    main, options = RUNS[run]
    _, events = run_traced(main, **options)
    live = Models()
    for start in range(0, len(events), 37):  # live, the UI folds in batches
        live.apply_all(events[start : start + 37])
    path = tmp_path / "run.jsonl"
    record(path, events)
    replayed = load_models(str(path))
    assert replayed == live
    assert replayed.tasks.tasks and replayed.narration.sentence  # not trivially equal
    fresh = Models()
    models = (fresh.tasks, fresh.selector, fresh.loop, fresh.timeline, fresh.narration)
    assert fold((Event.from_json(e.to_json()) for e in events), *models) == models
    assert fresh == live


def test_fold_returns_its_models_and_ignores_unknown_kinds() -> None:
    tasks, loop = fold([Event(0, 0.0, "never.heard.of", {})], TaskTable(), LoopState())
    assert tasks == TaskTable() and loop == LoopState()


def test_a_replay_that_starts_mid_stream_still_shows_the_running_tasks() -> None:
    _, events = run_traced(lambda: _scene("async"), virtual_time=True)
    middle = len(events) // 2
    models = Models()
    models.apply_all(events[middle:])
    names = {task.name for task in models.tasks.tasks.values()}
    assert {"print_numbers", "print_alphabet"} <= names
    assert models.narration.sentence
    assert {lane.name for lane in models.timeline.lanes.values()} >= {"print_numbers"}


def test_every_model_has_apply_all() -> None:
    for model in (TaskTable(), SelectorState(), LoopState(), Timeline(), Narration(), Models()):
        model.apply_all([])
