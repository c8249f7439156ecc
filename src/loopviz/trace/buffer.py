"""A bounded, thread-safe event buffer between the traced loop and its consumer.

The loop thread appends raw records to a ``deque(maxlen=...)``; appending never blocks and, when
the consumer falls behind, the oldest records fall off the far end. Every record carries a sequence
number, so the consumer (``Decoder``) counts exactly how many it never saw.
"""

from __future__ import annotations

from collections import deque
from typing import Any

DEFAULT_CAPACITY = 65_536

RawRecord = tuple[Any, ...]


class EventBuffer:
    """Raw records in, batches out. ``append`` is called on the hot path; ``drain`` anywhere."""

    __slots__ = ("_records", "append", "capacity")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 16:
            raise ValueError("an event buffer needs room for at least 16 events")
        self.capacity = capacity
        self._records: deque[RawRecord] = deque(maxlen=capacity)
        self.append = self._records.append

    def __len__(self) -> int:
        return len(self._records)

    def drain(self, limit: int | None = None) -> list[RawRecord]:
        """Take up to ``limit`` records (all of them by default), oldest first, in seq order."""
        records = self._records
        batch: list[RawRecord] = []
        take = batch.append
        count = len(records) if limit is None else min(limit, len(records))
        try:
            for _ in range(count):
                take(records.popleft())
        except IndexError:  # another consumer raced us; what we have is fine
            pass
        # Records appended from other threads can land a hair out of seq order.
        batch.sort(key=_seq)
        return batch


def _seq(record: RawRecord) -> int:
    return record[1]
