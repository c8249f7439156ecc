"""The traced event loop: a stock asyncio loop that reports what it does.

Headless and UI-free (nothing here imports Textual). ``new_event_loop()`` gives a loop to run code
on, ``EventStream(loop).read()`` gives its events, and the loop's ``set_speed``/``pause``/
``resume``/``step``/``step_task`` control it from any thread.
"""

from loopviz.trace.clock import MAX_SPEED, MIN_SPEED, check_speed
from loopviz.trace.events import Event, read_jsonl
from loopviz.trace.loop import TracedEventLoop, new_event_loop
from loopviz.trace.output import capture_output
from loopviz.trace.stream import EventStream

__all__ = [
    "MAX_SPEED",
    "MIN_SPEED",
    "Event",
    "EventStream",
    "TracedEventLoop",
    "capture_output",
    "check_speed",
    "new_event_loop",
    "read_jsonl",
]
