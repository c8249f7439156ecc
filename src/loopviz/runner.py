"""Runs scenes on one traced loop in a thread of its own, headless.

It runs in the scenes' child process (``loopviz.wire.child``), or in a test's own process
(``InProcessSource``). The loop never shares a thread with whoever reads it, so reading goes on
while the traced loop is paused, stepping, or frozen by a blocking call. A scene that fails is
reported as a ``scene.failed`` event; the other scenes keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

from loopviz.scenes import Scene, SceneError, scene_class
from loopviz.trace import EventStream, TracedEventLoop, capture_output, new_event_loop

log = logging.getLogger("loopviz")


@dataclass(frozen=True)
class SceneSpec:
    """Which scene to run, in which variant, with which options."""

    name: str
    variant: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: Run the scene again this many loop seconds after it ends (the dashboard's demos);
    #: None runs it once.
    repeat: float | None = None


@dataclass(frozen=True)
class ScheduledAction:
    """``--at T:ACTION``: take ``action`` in ``scene`` at loop time ``at`` seconds."""

    at: float
    scene: str
    action: str


def check_specs(specs: list[SceneSpec], schedule: list[ScheduledAction] | None = None) -> None:
    """SceneError (one line) for a scene, variant, option or action that is not there, before
    a process is started to run them: the scenes are built once on a loop that never runs."""
    SceneRunner(specs, capacity=16, schedule=schedule).stop()


class SceneRunner:
    """One traced loop in a thread, running one or more scenes; controllable from any thread."""

    def __init__(
        self,
        specs: list[SceneSpec],
        *,
        speed: float = 1.0,
        paused: bool = False,
        capacity: int = 65_536,
        duration: float | None = None,
        schedule: list[ScheduledAction] | None = None,
        virtual_time: bool = False,
    ) -> None:
        self.loop: TracedEventLoop = new_event_loop(
            speed=speed, paused=paused, capacity=capacity, virtual_time=virtual_time
        )
        self.specs = {spec.name: spec for spec in specs}
        try:
            self.scenes: dict[str, Scene] = {}
            for spec in specs:
                self.scenes[spec.name] = scene_class(spec.name)(
                    self.loop, spec.variant, **spec.options
                )
            for item in schedule or ():
                self._check_action(item.scene, item.action)
        except BaseException:
            self.loop.close()
            raise
        self.stream = EventStream(self.loop)
        self.duration = duration
        self.schedule = list(schedule or ())
        self.failures: dict[str, str] = {}
        self._main_task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._thread_main, name="loopviz-traced-loop", daemon=True
        )
        self._thread.start()
        self._started.wait(5)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def stop(self, timeout: float = 5.0) -> bool:
        """Cancel the scenes, release a paused loop, close the loop; True if the thread ended."""
        self._stopping = True
        loop = self.loop
        if self._thread is None:
            if not loop.is_closed():
                loop.close()
            return True
        loop.gate.close()
        for scene in self.scenes.values():
            try:
                scene.interrupt()
            except Exception:  # pragma: no cover - stopping must go on whatever a scene does
                log.exception("loopviz: interrupting scene %r failed", scene.name)
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                loop.call_soon_threadsafe(self._cancel_everything)
        return self.join(timeout)

    def _cancel_everything(self) -> None:
        """Cancel every task at once (on the loop thread): cancelling only the main task
        reaches the scene's tasks one loop iteration at a time, and in the blocking demo every
        iteration blocks."""
        for task in asyncio.all_tasks(self.loop):
            task.cancel()

    # -- control -------------------------------------------------------------------------------

    def act(self, scene: str, action: str) -> None:
        """Take a user action in a scene, on the loop thread (safe from any thread)."""
        self._check_action(scene, action)
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self._act, scene, action)

    def _check_action(self, scene: str, action: str) -> None:
        target = self.scenes.get(scene)
        if target is None:
            raise SceneError(f"scene {scene!r} is not running")
        if action not in target.actions:
            choices = ", ".join(target.actions) or "none"
            raise SceneError(f"scene {scene!r} has no action {action!r} (actions: {choices})")

    def _act(self, scene: str, action: str) -> None:
        try:
            self.scenes[scene].act(action)
        except Exception as exc:  # an action must never take the loop down
            self.loop.emit("scene.failed", scene=scene, error=f"{action}: {exc}")

    # -- the loop thread -----------------------------------------------------------------------

    def _thread_main(self) -> None:
        # Started: a loop paused from the start runs nothing until the first step, so waiting
        # for the main task would freeze the caller.
        self._started.set()
        with (
            capture_output(self.loop.tracer),
            asyncio.Runner(loop_factory=lambda: self.loop) as runner,
            contextlib.suppress(asyncio.CancelledError),
        ):
            runner.run(self._main())

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._main_task = asyncio.current_task()
        if self._stopping:
            return
        for item in self.schedule:
            loop.call_at(item.at, self._act, item.scene, item.action)
        if self.duration is not None:
            loop.call_at(self.duration, self._finish)
        scene_tasks = []
        for name, scene in self.scenes.items():
            repeat = self.specs[name].repeat
            if repeat is None:
                scene_tasks.append(self._start_scene(name, scene))
            else:
                scene_tasks.append(
                    loop.create_task(self._repeat(name, scene, repeat), name=f"{name} repeater")
                )
        await asyncio.gather(*scene_tasks, return_exceptions=True)

    def _start_scene(self, name: str, scene: Scene) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(scene.run(), name=f"{name} main")
        task.add_done_callback(lambda done: self._scene_done(name, done))
        return task

    async def _repeat(self, name: str, scene: Scene, pause: float) -> None:
        """Run a scene again and again (each run a fresh task), until one fails."""
        while True:
            run = self._start_scene(name, scene)
            await asyncio.wait([run])
            if run.cancelled() or run.exception() is not None:
                return
            await asyncio.sleep(pause)

    def _finish(self) -> None:
        if self._main_task is not None:
            self._main_task.cancel()

    def _scene_done(self, name: str, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        error = "".join(traceback.format_exception_only(task.exception())).strip()
        self.failures[name] = error
        self.loop.emit("scene.failed", scene=name, error=error)
