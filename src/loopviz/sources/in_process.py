"""Scenes on a traced loop in a thread of this process: for tests, benchmarks and screenshots.

The dashboard itself uses a child process (``ChildSource``): in one process, drawing the
dashboard holds the GIL and makes the traced loop's steps look long. Tests want the opposite:
no process to start, and virtual time, so a picture is the same on every run.
"""

from __future__ import annotations

from typing import Any

from loopviz.events import Event
from loopviz.runner import SceneRunner, SceneSpec, ScheduledAction
from loopviz.sources.base import ENDED, RUNNING, STARTING, CommandError, Status
from loopviz.wire.commands import apply_command


class InProcessSource:
    """Runs ``specs`` with a ``SceneRunner`` (see ``loopviz.runner``) and reads its stream."""

    def __init__(
        self,
        specs: list[SceneSpec],
        *,
        speed: float = 1.0,
        paused: bool = False,
        virtual_time: bool = False,
        capacity: int = 65_536,
        duration: float | None = None,
        schedule: list[ScheduledAction] | None = None,
    ) -> None:
        self.specs = specs
        self.scenes = tuple(spec.name for spec in specs)
        self._options: dict[str, Any] = {
            "virtual_time": virtual_time,
            "capacity": capacity,
            "duration": duration,
            "schedule": schedule,
        }
        self._speed = speed
        self._paused = paused
        self._started = False
        self.runner = self._new_runner()

    def _new_runner(self) -> SceneRunner:
        return SceneRunner(self.specs, speed=self._speed, paused=self._paused, **self._options)

    def start(self) -> None:
        self._started = True
        self.runner.start()

    def read(self, limit: int | None = None) -> list[Event]:
        return self.runner.stream.read(limit)

    def ready(self) -> bool:
        return len(self.runner.loop.tracer.buffer) > 0

    def status(self) -> Status:
        if not self._started:
            return Status(STARTING)
        return Status(RUNNING if self.runner.running else ENDED)

    def send(self, command: str, **fields: Any) -> None:
        try:
            apply_command({"command": command, **fields}, self.runner.loop, self.runner.act)
        except ValueError as exc:  # SceneError: no such scene or action
            raise CommandError(str(exc)) from None

    def stop(self, timeout: float = 5.0) -> bool:
        return self.runner.stop(timeout)

    def restart(self) -> None:
        loop = self.runner.loop  # paused or sped up by hand too (tests do): as it is now
        self._paused, self._speed = loop.paused, loop.speed
        self.runner.stop()
        self.runner = self._new_runner()
        self.runner.start()
