"""The event record, for the tracing layer: it lives in ``loopviz.events`` (shared by every
layer; a viewer needs it without loading the tracer)."""

from loopviz.events import *  # noqa: F403
from loopviz.events import Event, read_jsonl

__all__ = ["Event", "read_jsonl"]
