"""Copying a source's event lines into a file, as they come: ``record`` and ``run --record``.

The lines go through unparsed (the child already wrote them as the recording format wants
them), each batch flushed whole, so the file holds every event copied whatever comes next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from loopviz.output_file import OutputFile, OutputFileError, ReaderGone, WriteStalled
from loopviz.sources.child import ChildSource
from loopviz.stop_signals import StopSignals

#: Seconds between two looks at the pipe when nothing came.
WAIT = 0.05


@dataclass
class Copied:
    """How a copy ended."""

    #: Event lines written (the header not counted), and the loop time of the last.
    events: int = 0
    last_t: float = 0.0
    #: The stop signal that ended it before the program did, if one did.
    signal: int | None = None
    reader_gone: bool = False
    #: Why the file could not be written, as one line.
    problem: str | None = None
    dropped: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def copy_events(
    source: ChildSource,
    output: OutputFile,
    stop: StopSignals,
    on_signal: Callable[[int], None],
) -> Copied:
    """Copy until the source is over. A stop signal is handed to ``on_signal`` once (stop
    the scenes, or pass it on to the program) and the copy goes on until the source ends.
    The output is closed (put in place) at the end, or discarded if it failed."""
    copied = Copied()
    told = False
    try:
        while True:
            if stop.received is not None and not told:
                told = True
                copied.signal = stop.received
                on_signal(stop.received)
            over = source.status().over
            chunk = source.read_lines()
            if over:
                chunk += source.ending_line()
            if chunk:
                output.write(chunk.decode("utf-8", "surrogateescape"))
                output.flush()
            if over:
                break
            source.wait(WAIT)
        output.close()
    except ReaderGone:
        copied.reader_gone = True
    except WriteStalled:
        copied.signal = stop.received
    except OutputFileError as exc:
        copied.problem = str(exc)
    finally:
        source.stop()
        output.discard()  # after close() this does nothing; else the old file stays whole
    copied.events = source.events_read
    copied.last_t = source.last_t
    copied.dropped = source.dropped
    copied.failures = dict(source.failures)
    return copied
