"""What a scene is: a real asyncio program that runs on the traced loop and teaches one idea.

A scene never fakes an event. It runs ordinary asyncio code; the traced loop reports what that
code did. Scenes may add domain events (``queue.published``...) with ``self.emit`` and give fds
human labels with ``self.label_fd``, and they take user actions (``consumer-down``) via ``act``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from loopviz.trace import TracedEventLoop


class SceneError(ValueError):
    """A bad scene option or action, worded for the user (one line)."""


class Scene(ABC):
    """One built-in scene. Subclasses set the class attributes and implement ``run``."""

    name: ClassVar[str]
    title: ClassVar[str]
    variants: ClassVar[tuple[str, ...]] = ("default",)
    #: Actions the user can take while it runs (keys in the UI, ``--at T:ACTION`` headless).
    actions: ClassVar[tuple[str, ...]] = ()
    #: Loop seconds after which ``record`` stops a scene that would run forever; None = runs out.
    default_duration: ClassVar[float | None] = None

    def __init__(self, loop: TracedEventLoop, variant: str | None = None, **options: Any) -> None:
        chosen = variant or self.variants[0]
        if chosen not in self.variants:
            raise SceneError(
                f"scene {self.name!r} has no variant {chosen!r}; "
                f"choose from {', '.join(self.variants)}"
            )
        self.loop = loop
        self.variant = chosen
        self.options = options

    @abstractmethod
    async def run(self) -> None:
        """The scene's main coroutine; it runs as a task on the traced loop."""

    def interrupt(self) -> None:
        """The scenes are being stopped (called from the controlling thread, not the loop's).

        Cancellation reaches a task only at an ``await``; a scene whose task can sit in a
        blocking call (a blocking ``recv``) releases it here, so stopping never has to wait for
        the call to end by itself. The default has nothing to release.
        """
        return

    def act(self, action: str) -> None:
        """Take a user action. Called on the loop thread."""
        raise SceneError(f"scene {self.name!r} has no action {action!r}")

    # -- helpers for subclasses ----------------------------------------------------------------

    @property
    def speed(self) -> float:
        return self.loop.speed

    def emit(self, kind: str, **fields: Any) -> None:
        """Put a domain event on the stream (safe from any thread)."""
        self.loop.emit(kind, scene=self.name, **fields)

    def label_fd(self, fileobj: Any, label: str) -> None:
        self.loop.label_fd(fileobj, label)
