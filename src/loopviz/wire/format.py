"""The wire and recording format: a header line, then one event per line, as JSON.

Each event line is ``Event.to_dict()`` plus ``loop``, the number of the loop it came from (a
program may run several loops, in turn or in threads). The header says what was traced, so a
recording names its program. Version 1 is described in ``docs/wire.md``; a reader refuses a
newer version rather than misread it.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Mapping
from typing import Any

from loopviz.events import HEADER_KIND, RECORDING_VERSION, Event

WIRE_VERSION = RECORDING_VERSION

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=repr).encode


def header(**fields: Any) -> dict[str, Any]:
    """The first line of a stream: what runs (``program``, ``argv``, ``scenes``...), on which
    Python, since when (ISO 8601, UTC)."""
    return {
        "kind": HEADER_KIND,
        "version": WIRE_VERSION,
        "python": platform.python_version(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **fields,
    }


def encode(fields: Mapping[str, Any]) -> str:
    """One line of JSON (no newline), compact; a value JSON cannot hold is written as its repr."""
    return _encode(fields)


def event_line(event: Event, seq: int, loop: int | None) -> str:
    """``event`` as one wire line, numbered ``seq`` in the whole stream, from loop ``loop``."""
    data: dict[str, Any] = {"seq": seq, "t": round(event.t, 6), "kind": event.kind}
    if loop is not None:
        data["loop"] = loop
    data.update(event.fields)
    return _encode(data)
