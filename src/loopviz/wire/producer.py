"""The program's side of the wire: every traced loop of the process, drained into one stream.

Each loop has its own buffer and decoder (``EventStream``); the producer numbers their events in
one sequence, adds which loop each came from, and writes them as JSON lines. It also hands out
new loops (``new_loop``), so that a program's loops share one time line and never give two tasks
one id, and takes commands (pause, step...) for all of them at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopviz.events import Event
from loopviz.trace import EventStream, TracedEventLoop, new_event_loop
from loopviz.trace.tracer import Tracer
from loopviz.wire.format import event_line

#: A loop made while another is still open numbers its tasks this far above the highest id
#: given so far, so loops in threads never share an id.
TASK_ID_BLOCK = 1_000_000


@dataclass
class _Traced:
    number: int
    loop: TracedEventLoop
    stream: EventStream


class Producer:
    """Loops in, numbered JSON lines out. ``lines()`` is called from one thread (the writer's);
    ``new_loop``, ``add`` and the controls from any."""

    def __init__(
        self,
        *,
        speed: float = 1.0,
        paused: bool = False,
        capacity: int = 1 << 20,
        loop_factory: Callable[..., TracedEventLoop] = new_event_loop,
    ) -> None:
        self.speed = speed
        self.paused = paused
        self.capacity = capacity
        self._factory = loop_factory
        self._lock = threading.Lock()
        self._traced: list[_Traced] = []
        self._seq = 0
        self._last_t = 0.0
        self.loops_seen = 0

    # -- loops ---------------------------------------------------------------------------------

    def new_loop(self, **options: Any) -> TracedEventLoop:
        """A traced loop for the program, at the program's speed (paused if it is), its clock
        going on from the others' and its task ids above theirs."""
        with self._lock:
            start = max((t.loop.time() for t in self._traced), default=self._last_t)
            highest = max((t.loop.tracer.task_ids for t in self._traced), default=0)
            if any(not t.loop.is_closed() for t in self._traced):
                highest += TASK_ID_BLOCK
            options.setdefault("capacity", self.capacity)
            loop = self._factory(
                speed=self.speed,
                paused=self.paused,
                start_time=start,
                first_task_id=highest + 1,
                **options,
            )
        self.add(loop)
        return loop

    def add(self, loop: TracedEventLoop) -> int:
        """Read ``loop``'s events from now on; returns its number in the stream (1, 2...)."""
        with self._lock:
            self.loops_seen += 1
            number = self.loops_seen
            self._traced.append(_Traced(number, loop, EventStream(loop)))
        return number

    def tracer_on(self, thread: int) -> Tracer | None:
        """The tracer of the loop running on ``thread``, if one is (output routing)."""
        for item in self._traced:
            loop = item.loop
            if loop.tracer.loop_thread_id == thread and loop.is_running():
                return loop.tracer
        return None

    def open_loops(self) -> list[TracedEventLoop]:
        with self._lock:
            return [t.loop for t in self._traced if not t.loop.is_closed()]

    # -- events --------------------------------------------------------------------------------

    def lines(self) -> str:
        """Every event recorded since the last call, one JSON line each (oldest first per loop;
        loops one after another). A closed loop is read one last time and let go."""
        with self._lock:
            traced = list(self._traced)
        parts: list[str] = []
        for item in traced:
            closed = item.loop.is_closed()  # before reading: nothing comes after a close
            events = item.stream.read()
            if events:
                self._write(parts, events, item.number)
            if closed:
                with self._lock:
                    self._traced.remove(item)
                    self._last_t = max(self._last_t, item.loop.time())
        return "".join(parts)

    def _write(self, parts: list[str], events: list[Event], loop: int) -> None:
        seq = self._seq
        append = parts.append
        for event in events:
            append(event_line(event, seq, loop))
            append("\n")
            seq += 1
        self._seq = seq
        self._last_t = max(self._last_t, events[-1].t)

    # -- control -------------------------------------------------------------------------------

    def pause(self) -> None:
        self.paused = True
        for loop in self.open_loops():
            loop.pause()

    def resume(self) -> None:
        self.paused = False
        for loop in self.open_loops():
            loop.resume()

    def step(self) -> None:
        for loop in self.open_loops():
            loop.step()

    def step_task(self) -> None:
        for loop in self.open_loops():
            loop.step_task()

    def set_speed(self, speed: float) -> None:
        self.speed = speed
        for loop in self.open_loops():
            loop.set_speed(speed)
