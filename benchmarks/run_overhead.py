"""Whole-process cost of ``loopviz run``: the same program under ``python`` and under loopviz.

    python benchmarks/run_overhead.py [--rounds N] [--only W1|W3|start]

Each workload is a script in ``benchmarks/programs``, run as a whole process: under ``python``,
then under ``loopviz run --headless --record FILE`` (every event written, nothing may be
dropped), in interleaved rounds whose order rotates; the medians of wall time and their ratio
are printed. ``start`` (an empty ``asyncio.run``) shows what starting the two processes costs.

  W1     1,000 tasks x 100 ``sleep(0)``                    target ratio <= 1.35
  W3     200 concurrent TCP echoes on 127.0.0.1, x 10     target ratio <= 1.1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROGRAMS = Path(__file__).with_name("programs")
LOOPVIZ = Path(sys.executable).with_name("loopviz")
WORKLOADS = {"W1": "w1_many_tasks.py", "W3": "w3_tcp_echo.py", "start": "empty.py"}
TARGETS = {"W1": 1.35, "W3": 1.1}


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def dropped(recording: Path) -> int:
    total = 0
    with recording.open() as lines:
        for line in lines:
            if '"events_dropped"' in line:
                total = json.loads(line)["total"]
    return total


def measure(name: str, rounds: int) -> dict[str, object]:
    script = str(PROGRAMS / WORKLOADS[name])
    with tempfile.TemporaryDirectory() as folder:
        recording = Path(folder) / "run.jsonl"
        ways = {
            "python": [sys.executable, script],
            "loopviz": [str(LOOPVIZ), "run", "--headless", "--record", str(recording), script],
        }
        times: dict[str, list[float]] = {way: [] for way in ways}
        order = list(ways)
        timed(ways["python"])  # warm the file cache
        for number in range(rounds):
            for way in order[number % 2 :] + order[: number % 2]:
                times[way].append(timed(ways[way]))
        lost = dropped(recording)
        events = sum(1 for _ in recording.open()) - 1
    plain = statistics.median(times["python"])
    traced = statistics.median(times["loopviz"])
    return {
        "workload": name,
        "python_s": round(plain, 3),
        "loopviz_s": round(traced, 3),
        "ratio": round(traced / plain, 3),
        "target": TARGETS.get(name),
        "events": events,
        "dropped": lost,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", choices=list(WORKLOADS))
    args = parser.parse_args(argv)
    names = [args.only] if args.only else list(WORKLOADS)
    print(
        f"{'workload':8} {'python':>8} {'loopviz':>8} {'ratio':>6} {'target':>6}  events, dropped"
    )
    for name in names:
        row = measure(name, max(1, args.rounds))
        target = row["target"] if row["target"] is not None else "-"
        print(
            f"{name:8} {row['python_s']:>8} {row['loopviz_s']:>8} {row['ratio']:>6} "
            f"{target:>6}  {row['events']}, {row['dropped']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
