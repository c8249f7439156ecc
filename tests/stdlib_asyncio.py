"""Run CPython's own asyncio test suite with loopviz's traced loop as the default loop.

    python tests/stdlib_asyncio.py --loop traced|stock [--json OUT] [MODULE ...]

Every loop asyncio makes by default (``asyncio.new_event_loop()``, ``asyncio.run()``,
``asyncio.Runner()``) is then a ``TracedEventLoop``: the default policy's loop factory is
replaced, which is how the 3.14 suite itself makes loops (it resets the policy between tests,
and 3.14 deprecates setting one). Loops a test builds by naming a class stay stock. The
outcome of every test is printed, or written as JSON, so that
``tests/test_stdlib_asyncio.py`` can compare the traced loop with the stock one on the same
Python: the traced loop may fail no test the stock loop passes.
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.unix_events
import io
import json
import sys
import unittest
from typing import Any

#: The modules that exercise a selector event loop on Unix (Windows, proactor and the slow
#: SSL and sendfile suites are left out: they test transports the tracer does not touch).
DEFAULT_MODULES = (
    "test_base_events",
    "test_buffered_proto",
    "test_context",
    "test_eager_task_factory",
    "test_events",
    "test_free_threading",
    "test_futures",
    "test_futures2",
    "test_graph",
    "test_locks",
    "test_pep492",
    "test_protocols",
    "test_queues",
    "test_runners",
    "test_selector_events",
    "test_server",
    "test_sock_lowlevel",
    "test_staggered",
    "test_streams",
    "test_taskgroups",
    "test_tasks",
    "test_threads",
    "test_timeouts",
    "test_unix_events",
    "test_waitfor",
)


def install_traced_loop() -> None:
    """Make the traced loop the one every default policy creates."""
    from loopviz.trace import TracedEventLoop

    asyncio.unix_events._UnixDefaultEventLoopPolicy._loop_factory = TracedEventLoop  # type: ignore[attr-defined]


def available(names: tuple[str, ...]) -> list[str]:
    """The names (modules, or ``module.Class.test``) whose module this Python's suite has."""
    import importlib.util

    return [
        name
        for name in names
        if importlib.util.find_spec(f"test.test_asyncio.{name.split('.')[0]}") is not None
    ]


class _Outcomes(unittest.TextTestResult):
    """Keeps every test's outcome by id."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: dict[str, str] = {}

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self.outcomes[test.id()] = "passed"

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self.outcomes[test.id()] = "failed"

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        self.outcomes[test.id()] = "error"

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self.outcomes[test.id()] = "skipped"

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self.outcomes[test.id()] = "passed"

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self.outcomes[test.id()] = "failed"


def run(modules: list[str], stream: Any) -> tuple[dict[str, str], str]:
    """Run the modules' tests; return each test's outcome and the runner's report."""
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromNames([f"test.test_asyncio.{m}" for m in modules])
    report = io.StringIO()
    runner = unittest.TextTestRunner(stream=report, resultclass=_Outcomes, verbosity=1)
    result = runner.run(suite)
    assert isinstance(result, _Outcomes)
    return result.outcomes, report.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=("traced", "stock"), required=True)
    parser.add_argument("--json", help="write {test id: outcome} here")
    parser.add_argument("modules", nargs="*")
    args = parser.parse_args(argv)
    if args.loop == "traced":
        install_traced_loop()
    modules = available(tuple(args.modules) or DEFAULT_MODULES)
    outcomes, report = run(modules, sys.stderr)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"modules": modules, "outcomes": outcomes, "report": report}, out)
    else:
        sys.stdout.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
