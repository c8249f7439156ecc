"""Builds the optional C hot path (``loopviz.trace._speedups``); metadata is in pyproject.toml.

``optional=True``: without a C compiler or Python headers the build is skipped with a warning
and loopviz runs on the pure-Python tracer (same events, more overhead).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "loopviz.trace._speedups",
            ["src/loopviz/trace/_speedups.c"],
            optional=True,
        )
    ]
)
