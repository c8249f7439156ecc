"""The consumer's end of a traced loop: drain the buffer in batches, get named events."""

from __future__ import annotations

from loopviz.trace.decoder import Decoder
from loopviz.trace.events import Event
from loopviz.trace.loop import TracedEventLoop


class EventStream:
    """Reads one traced loop's events. Use from one consumer thread (the UI's timer, a recorder)."""

    def __init__(self, loop: TracedEventLoop) -> None:
        self.loop = loop
        self.decoder = Decoder()
        tracer = loop.tracer
        self._buffer = tracer.buffer

        def resync() -> None:
            tracer.resync_requested = True  # lost fd changes: have the loop repeat its fd map
            self.decoder.set_clock_base(loop.clock.base)  # and perhaps the clock's base

        self.decoder.on_drop = resync

    @property
    def dropped(self) -> int:
        """Events lost because this consumer fell behind (the buffer dropped the oldest)."""
        return self.decoder.dropped

    def read(self, limit: int | None = None) -> list[Event]:
        return self.decoder.decode(self._buffer.drain(limit))
