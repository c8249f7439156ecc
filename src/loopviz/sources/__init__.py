"""Where the dashboard, ``record`` and ``run`` get events from: one interface, several sources.

``ChildSource`` runs a traced program (built-in scenes or the user's own) in a child process;
``InProcessSource`` runs scenes in a thread of this process (tests, benchmarks, screenshots).
A recording file will be one more (replay).
"""

from loopviz.sources.base import CommandError, Source, Status

__all__ = ["CommandError", "Source", "Status"]
