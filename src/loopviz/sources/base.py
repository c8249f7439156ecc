"""The source interface: batches of events, a status, and commands going back.

Whoever shows or stores events (the dashboard, ``record``, ``run``) uses only this; it never
touches a loop, a tracer or a scene. So the dashboard works the same on a child process, on
scenes in a thread of its own process, and (next) on a recording.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from loopviz.events import Event

STARTING, RUNNING, ENDED, EXITED = "starting", "running", "ended", "exited"


class CommandError(ValueError):
    """A command the source cannot take (a scene action it does not have), worded for the
    user in one line."""


@dataclass(frozen=True)
class Status:
    """Where the source is: ``starting``, ``running``, ``ended`` (its scenes finished) or
    ``exited`` (the program's process ended, with ``code``: its exit status, or 128 + the
    signal that killed it, as a shell says)."""

    state: str = STARTING
    code: int | None = None
    #: The signal that ended the program, by name, if one did.
    signal: str | None = None

    @property
    def over(self) -> bool:
        return self.state in (ENDED, EXITED)


class Source(Protocol):
    """What produces events. Commands are ``pause``, ``resume``, ``step``, ``step_task``,
    ``speed`` (``value=``) and ``act`` (``scene=``, ``action=``)."""

    #: The built-in scenes it runs, by name (none for a user's program).
    scenes: tuple[str, ...]

    def start(self) -> None: ...

    def read(self, limit: int | None = None) -> list[Event]:
        """The events since the last read, oldest first, at most ``limit``."""
        ...

    def ready(self) -> bool:
        """Whether events are waiting to be read (cheap: a view asks often after a key)."""
        ...

    def status(self) -> Status: ...

    def send(self, command: str, **fields: Any) -> None:
        """Ask the program to do something; CommandError if it cannot."""
        ...

    def stop(self, timeout: float = 5.0) -> bool:
        """End the program (its own clean-up runs first); True once nothing of it is left."""
        ...

    def restart(self) -> None:
        """Stop and start the same program again, from nothing."""
        ...
