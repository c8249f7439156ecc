"""The consumer's end of a traced loop: drain the buffer in batches, get named events."""

from __future__ import annotations

import time

from loopviz.events import Event
from loopviz.trace.decoder import Decoder
from loopviz.trace.loop import TracedEventLoop

#: A task step that has held the loop this long (wall seconds) is reported while it runs.
RUNNING_AFTER = 0.15
#: Wall seconds between two reports of one long step.
RUNNING_EVERY = 0.1


class EventStream:
    """Reads one traced loop's events. Use from one consumer thread (the UI's timer, a recorder)."""

    def __init__(self, loop: TracedEventLoop) -> None:
        self.loop = loop
        self.decoder = Decoder()
        self._tracer = tracer = loop.tracer
        self._buffer = tracer.buffer
        self._running_told = 0.0

        def resync() -> None:
            tracer.resync_requested = True  # lost fd changes: have the loop repeat its fd map
            self.decoder.set_clock_base(loop.clock.base)  # and perhaps the clock's base

        self.decoder.on_drop = resync

    @property
    def dropped(self) -> int:
        """Events lost because this consumer fell behind (the buffer dropped the oldest)."""
        return self.decoder.dropped

    def read(self, limit: int | None = None) -> list[Event]:
        """The events recorded since the last read, oldest first; then, once every record is
        read, a ``step_running`` event if a task step has held the loop for a while.

        A step is recorded when it ends, so while one blocks the loop thread (``time.sleep``)
        no record says so: the tracer's ``current`` and ``step_started``, plain attributes the
        loop thread sets when a step begins, do. That step cannot end before the next read,
        whose records then come after this event."""
        raw = self._buffer.drain(limit)
        events = self.decoder.decode(raw)
        if limit is not None and len(raw) >= limit:
            return events  # more to read: the loop may be past that step already
        tracer = self._tracer
        started = tracer.step_started
        task_id = tracer.current
        if not started or task_id is None:
            return events
        now = time.monotonic()
        if now - started < RUNNING_AFTER or now - self._running_told < RUNNING_EVERY:
            return events
        if tracer.step_started != started:  # it ended while we looked
            return events
        self._running_told = now
        events.extend(self.decoder.step_running(task_id, started, now))
        return events
