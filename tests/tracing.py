"""Helpers for tests that run code on a traced loop and look at its events."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from loopviz.trace import Event, EventStream, capture_output, new_event_loop


def run_traced(
    main: Callable[[], Coroutine[Any, Any, Any]], **options: Any
) -> tuple[Any, list[Event]]:
    """Run ``main()`` on a fresh traced loop (closed afterwards); return its result and events."""
    loop = new_event_loop(**options)
    stream = EventStream(loop)
    with (
        contextlib.redirect_stdout(io.StringIO()),
        capture_output(loop.tracer),
        asyncio.Runner(loop_factory=lambda: loop) as runner,
    ):
        result = runner.run(main())
    return result, stream.read()


def kinds(events: Iterable[Event], *wanted: str) -> list[Event]:
    return [e for e in events if e.kind in wanted]


def user_steps(events: Iterable[Event]) -> list[tuple[str, str]]:
    """``(kind, task name)`` of every step event of the user's own tasks."""
    users = {e["task"] for e in events if e.kind == "task_spawned" and e["user"]}
    return [
        (e.kind, e["name"])
        for e in events
        if e.kind in ("before_task_step", "after_task_step") and e["task"] in users
    ]


class LoopThread:
    """A traced loop running ``main()`` in a thread, so a test can pause and step it."""

    def __init__(self, main: Callable[[], Coroutine[Any, Any, Any]], **options: Any) -> None:
        import threading

        self.loop = new_event_loop(**options)
        self.stream = EventStream(self.loop)
        self.events: list[Event] = []
        self.result: Any = None
        self._main = main
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with asyncio.Runner(loop_factory=lambda: self.loop) as runner:
            self.result = runner.run(self._main())

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.gate.close()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the traced loop did not finish"

    def read(self) -> list[Event]:
        batch = self.stream.read()
        self.events.extend(batch)
        return batch

    def wait_until_stopped(self, timeout: float = 5.0) -> str:
        """Wait until the gate holds the loop; return where (iteration / task step)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            where = self.loop.gate.waiting_at
            if where is not None:
                return where
            time.sleep(0.002)
        raise AssertionError("the loop did not stop at the gate")
