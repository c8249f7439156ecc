"""Shared fixtures: traced loops that are always closed, and a clean rendering environment."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator

import pytest

from loopviz.trace import Event, EventStream, TracedEventLoop, new_event_loop

# Rendering must not depend on the developer's terminal settings.
for _name in ("NO_COLOR", "TEXTUAL_THEME", "FORCE_COLOR", "TEXTUAL"):
    os.environ.pop(_name, None)


@pytest.fixture
def make_loop() -> Iterator[Callable[..., TracedEventLoop]]:
    """Build traced loops; each is closed after the test."""
    loops: list[TracedEventLoop] = []

    def build(**options: object) -> TracedEventLoop:
        loop = new_event_loop(**options)  # type: ignore[arg-type]
        loops.append(loop)
        return loop

    yield build
    for loop in loops:
        if not loop.is_closed():
            loop.close()


def run_traced(coro_factory: Callable[[], object], **options: object) -> tuple[object, list[Event]]:
    """Run a coroutine on a fresh traced loop; return its result and every event."""
    loop = new_event_loop(**options)  # type: ignore[arg-type]
    stream = EventStream(loop)
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        result = runner.run(coro_factory())  # type: ignore[arg-type]
    return result, stream.read()
