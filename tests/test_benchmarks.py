"""The benchmarks run and print what their docs promise (figures are never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_tracer_overhead_prints_one_json_object_with_every_workload() -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "tracer_overhead.py"),
            "--rounds",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    results = json.loads(run.stdout)
    assert set(results) == {"W1", "W2", "W3"}
    for name, row in results.items():
        assert row["ratio"] > 0 and row["plain_s"] > 0 and row["traced_s"] > 0
        assert row["pair_ratio_q1"] <= row["pair_ratio_q3"]
        assert row["tracer"] in ("C", "pure Python")
        assert row["frames"] in ("in place", "public", "-")
        assert row["python"] == sys.version.split()[0]
        assert row["events"] > 0
        assert ("target" in row) == (name in ("W1", "W3"))
