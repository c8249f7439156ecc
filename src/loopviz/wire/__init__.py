"""The process boundary: a traced program's events go out as JSON lines, commands come in.

A traced program (a built-in scene or the user's own script) runs in a child process of its own
(``loopviz.wire.child``); the dashboard, ``record`` and ``run`` read it through
``loopviz.sources.ChildSource``. The same lines are the recording format (``docs/wire.md``).
"""
