"""Fold events into models: the same code for a live stream, a recorded file and tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from loopviz.events import Event, read_jsonl
from loopviz.models.loop_state import LoopState
from loopviz.models.narration import Narration
from loopviz.models.selector import SelectorState
from loopviz.models.tasks import TaskTable
from loopviz.models.timeline import Timeline


class Model(Protocol):
    def apply(self, event: Event) -> None: ...


M = TypeVar("M", bound=Model)


def fold(events: Iterable[Event], *models: M) -> tuple[M, ...]:
    """Apply every event, in order, to every model; returns the models for unpacking."""
    applies = [model.apply for model in models]
    for event in events:
        for apply in applies:
            apply(event)
    return models


@dataclass
class Models:
    """The loop models one dashboard reads, folded together."""

    tasks: TaskTable = field(default_factory=TaskTable)
    selector: SelectorState = field(default_factory=SelectorState)
    loop: LoopState = field(default_factory=LoopState)
    timeline: Timeline = field(default_factory=Timeline)
    narration: Narration = field(default_factory=Narration)

    def apply(self, event: Event) -> None:
        self.tasks.apply(event)
        self.selector.apply(event)
        self.loop.apply(event)
        self.timeline.apply(event)
        self.narration.apply(event)

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)


def load_models(path: str, models: Models | None = None) -> Models:
    """Rebuild the models from a recorded JSONL file (into ``models`` if given)."""
    models = models if models is not None else Models()
    models.apply_all(read_jsonl(path))
    return models
