"""The event record: the contract between the traced loop, the models and every consumer.

Each event is one small immutable record with ``seq`` (increasing integer), ``t`` (loop clock,
seconds since the loop started) and ``kind``, plus kind-specific fields. It serialises to one JSON
object per line. Field names are documented in ``docs/events.md``; keep them stable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Loop events (trio's Instrument names, plus what asyncio has beyond them).
TASK_SPAWNED = "task_spawned"
BEFORE_TASK_STEP = "before_task_step"
AFTER_TASK_STEP = "after_task_step"
TASK_EXITED = "task_exited"
TASK_RENAMED = "task_renamed"
LOOP_HELD = "loop_held"
BEFORE_IO_WAIT = "before_io_wait"
AFTER_IO_WAIT = "after_io_wait"
LOOP_STALLED = "loop_stalled"
STEP_RUNNING = "step_running"
OUTPUT = "output"
# Loop control and bookkeeping.
FD_WATCH = "fd_watch"
FD_UNWATCH = "fd_unwatch"
FD_LABEL = "fd_label"
CLOCK = "clock"
EVENTS_DROPPED = "events_dropped"


@dataclass(frozen=True, slots=True)
class Event(Mapping[str, Any]):
    """One thing the loop did. Reads like a mapping of its kind-specific fields."""

    seq: int
    t: float
    kind: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key == "seq":
            return self.seq
        if key == "t":
            return self.t
        if key == "kind":
            return self.kind
        return self.fields[key]

    def __iter__(self) -> Iterator[str]:
        yield "seq"
        yield "t"
        yield "kind"
        yield from self.fields

    def __len__(self) -> int:
        return 3 + len(self.fields)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "t": round(self.t, 6), "kind": self.kind, **self.fields}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        try:
            seq, t, kind = data["seq"], data["t"], data["kind"]
        except KeyError as missing:
            raise ValueError(f"event lacks the field {missing}") from None
        if not isinstance(seq, int) or not isinstance(t, int | float) or not isinstance(kind, str):
            raise ValueError("event fields seq/t/kind have the wrong types")
        rest = {k: v for k, v in data.items() if k not in ("seq", "t", "kind")}
        return cls(seq, float(t), kind, rest)

    @classmethod
    def from_json(cls, line: str) -> Event:
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON object: {exc.msg}") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return cls.from_dict(data)


#: The first line of a recording (``docs/wire.md``): ``{"kind": "recording", "version": 1, ...}``.
HEADER_KIND = "recording"
RECORDING_VERSION = 1


def read_jsonl(path: str) -> list[Event]:
    """Read a recorded event stream (its header line, if any, skipped); a bad line, or a
    recording newer than this version reads, raises ValueError naming its line number."""
    events: list[Event] = []
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                if number == 1 and f'"kind":"{HEADER_KIND}"' in line.replace(" ", ""):
                    check_header(json.loads(line))
                    continue
                events.append(Event.from_json(line))
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
    return events


def check_header(data: Mapping[str, Any]) -> None:
    """ValueError unless ``data`` is a recording header this version reads."""
    version = data.get("version")
    if data.get("kind") != HEADER_KIND or not isinstance(version, int) or version < 1:
        raise ValueError("not a loopviz recording header")
    if version > RECORDING_VERSION:
        raise ValueError(
            f"a recording of version {version}, newer than this loopviz reads "
            f"({RECORDING_VERSION}): upgrade loopviz"
        )
