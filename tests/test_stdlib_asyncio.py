"""CPython's own asyncio tests pass on the traced loop wherever they pass on the stock loop.

Tracing only observes: the stock suite (``tests/stdlib_asyncio.py`` runs it) is run twice on this
Python, with the stock loop and with the traced loop as the default, and the traced run may fail
no test the stock run passed. A test that fails only on the traced loop is run once more on its
own, so that a timing-sensitive stdlib test that lost a race under load is not taken for a
tracer bug; one that fails again is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("stdlib_asyncio.py")
BAD = ("failed", "error")

try:
    import test.test_asyncio  # noqa: F401
except ImportError:  # pragma: no cover - Debian ships it as libpython3.X-testsuite
    pytestmark = pytest.mark.skip(reason="this Python has no test.test_asyncio package")


def _outcomes(tmp_path: Path, loop: str, *tests: str) -> dict[str, str]:
    out = tmp_path / f"{loop}-{len(tests)}.json"
    done = subprocess.run(
        [sys.executable, str(HARNESS), "--loop", loop, "--json", str(out), *tests],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["outcomes"], "no test ran"
    return result["outcomes"]


def test_the_traced_loop_passes_what_the_stock_loop_passes(tmp_path: Path) -> None:
    stock = _outcomes(tmp_path, "stock")
    traced = _outcomes(tmp_path, "traced")
    assert set(traced) == set(stock)
    only_traced = sorted(t for t, o in traced.items() if o in BAD and stock[t] not in BAD)
    if only_traced:
        # test ids are "test.test_asyncio.module.Class.method": the harness takes module names
        # and unittest names alike.
        names = (t.removeprefix("test.test_asyncio.") for t in only_traced)
        again = _outcomes(tmp_path, "traced", *names)
        still = sorted(t for t in only_traced if again.get(t) in BAD)
        assert not still, f"fail only on the traced loop: {still}"
    assert sum(o == "passed" for o in traced.values()) > 1000
