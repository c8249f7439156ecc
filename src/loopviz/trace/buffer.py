"""A bounded, thread-safe event buffer between the traced loop and its consumer.

The loop thread appends raw records; appending never blocks and, when the consumer falls behind,
the oldest records are dropped. Every record carries a sequence number, so the consumer
(``Decoder``) counts exactly how many it never saw.

With the C module built the records live in ``_speedups.Ring``: a preallocated ring in which a
task step's end is stored as plain fields (no tuple, no float objects, nothing for the allocator
or the GC) and turned into the same tuple as the Python path only when drained. Without it, a
``deque(maxlen=...)`` of tuples does the same job.
"""

from __future__ import annotations

from collections import deque
from operator import itemgetter
from typing import Any

from loopviz.trace.core import speedups

DEFAULT_CAPACITY = 65_536
#: Above this many records a preallocated ring (72 bytes a slot) would reserve more memory than
#: it saves; such buffers (long headless simulations) use the deque, which grows as it fills.
RING_LIMIT = 1 << 20

RawRecord = tuple[Any, ...]


class EventBuffer:
    """Raw records in, batches out. ``append`` is called on the hot path; ``drain`` anywhere."""

    __slots__ = ("_records", "append", "capacity", "ring")

    def __init__(self, capacity: int = DEFAULT_CAPACITY, *, ring: bool = True) -> None:
        """``ring=False`` keeps tuples in a deque even when the C ring is available."""
        if capacity < 16:
            raise ValueError("an event buffer needs room for at least 16 events")
        self.capacity = capacity
        #: The C ring the C proxy writes steps into, or None.
        self.ring: Any = None
        self._records: Any
        if ring and speedups is not None and capacity <= RING_LIMIT:
            self.ring = self._records = speedups.Ring(capacity)
        else:
            self._records = deque(maxlen=capacity)
        self.append = self._records.append

    def __len__(self) -> int:
        return len(self._records)

    def drain(self, limit: int | None = None) -> list[RawRecord]:
        """Take up to ``limit`` records (all of them by default), oldest first, in seq order."""
        records = self._records
        if self.ring is not None:
            batch = records.drain(limit)
        else:
            batch = []
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


_seq = itemgetter(1)
