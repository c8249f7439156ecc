"""Tracer overhead: plain asyncio against the traced loop, measured in the same run.

Workloads (issue 2):
  W1  1,000 tasks x 100 ``await asyncio.sleep(0)``            target ratio <= 1.5
  W2  the two-task demo (26 + 26 items) with 1 ms sleeps       reported
  W3  200 concurrent TCP echo round trips on 127.0.0.1         target ratio <= 1.05

Runs are interleaved so drift on a shared machine hits both sides alike, and each round
rotates their order (plain, traced, decoded; then traced, decoded, plain; ...) so no side always
runs right after another; the figure is the median of each side, the ratio traced/plain. Each
timed run is its loop's second: the first, an empty one, pays what a loop pays once (the
runner's set-up, the stall watchdog's thread start), as creating the loop (the tracer's buffer)
is already paid before the clock starts. Each run starts from a collected heap, so the garbage
one side leaves is not collected on the other side's clock (the collections a run's own
allocations cause are timed with it). A consumer thread drains the buffer at 30 Hz as the UI
does, so the buffer's cost is real:

  ratio          the consumer only drains raw records (a recorder shipping them elsewhere):
                 the tracer's own cost, the figure the targets are about;
  decode_ratio   the consumer also decodes every record into named events, as the dashboard
                 does; in one process it competes with the traced loop for the GIL.

``--json`` prints one JSON object; ``pair_ratio_q1``/``q3`` are the quartiles of the rounds' own
ratios, how far one run's figure can be trusted. Each row names the Python, the tracer it
measured ("C" when the optional ``_speedups`` module is built, else "pure Python";
``LOOPVIZ_PURE_PYTHON=1`` forces the latter) and how the C module read frames ("in place" on
CPython 3.11, 3.13 and 3.14; ``--frames public`` measures the public API path).

    python benchmarks/tracer_overhead.py [--rounds N] [--only W1,W3] [--frames MODE] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from loopviz.trace import EventStream, new_event_loop
from loopviz.trace.core import IMPLEMENTATION, speedups

TARGETS = {"W1": 1.5, "W3": 1.05}


async def w1_many_tasks() -> None:
    async def worker() -> None:
        for _ in range(100):
            await asyncio.sleep(0)

    await asyncio.gather(*(worker() for _ in range(1000)))


async def w2_two_task_demo() -> None:
    async def numbers() -> None:
        for i in range(1, 27):
            str(i)
            await asyncio.sleep(0.001)

    async def letters() -> None:
        for i in range(26):
            chr(ord("a") + i)
            await asyncio.sleep(0.001)

    task = asyncio.create_task(numbers())
    asyncio.create_task(letters())  # noqa: RUF006 - the demo's shape: not awaited
    await task


async def w3_tcp_echo() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, backlog=512)
    port = server.sockets[0].getsockname()[1]

    async def client(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"round trip %d\n" % i)
        await writer.drain()
        await reader.readline()
        writer.close()
        await writer.wait_closed()

    async with server:
        await asyncio.gather(*(client(i) for i in range(200)))


WORKLOADS: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
    "W1": w1_many_tasks,
    "W2": w2_two_task_demo,
    "W3": w3_tcp_echo,
}


async def _nothing() -> None:
    """The untimed first run of each loop (see the module docstring)."""


def time_plain(workload: Callable[[], Coroutine[Any, Any, None]]) -> float:
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        runner.run(_nothing())
        gc.collect()
        started = time.perf_counter()
        runner.run(workload())
        return time.perf_counter() - started


def time_traced(
    workload: Callable[[], Coroutine[Any, Any, None]], decode: bool
) -> tuple[float, int, int]:
    loop = new_event_loop()
    stream = EventStream(loop)
    buffer = loop.tracer.buffer
    done = threading.Event()
    counted = [0]

    def consume() -> None:  # the UI's 30 Hz drain, in a thread of its own
        read = stream.read if decode else buffer.drain
        while not done.wait(1 / 30):
            counted[0] += len(read())
        counted[0] += len(read())

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        runner.run(_nothing())
        gc.collect()
        started = time.perf_counter()
        runner.run(workload())
        elapsed = time.perf_counter() - started
    done.set()
    consumer.join()
    if not decode:  # count raw records lost, as the decoder would have
        counted[0] = loop.tracer.next_seq()
    return elapsed, counted[0], stream.dropped


def frame_access() -> str:
    """How the C module reads frames ("-" without it)."""
    return speedups.frame_access() if speedups is not None else "-"


def measure(rounds: int, only: list[str]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name, workload in WORKLOADS.items():
        if name not in only:
            continue
        time_plain(workload)  # warm up imports and caches on both sides
        time_traced(workload, decode=False)
        plain: list[float] = []
        traced: list[float] = []
        decoded: list[float] = []
        events = dropped = 0
        for round_number in range(rounds):
            sides = ["plain", "traced", "decoded"]
            shift = round_number % len(sides)
            for side in sides[shift:] + sides[:shift]:
                if side == "plain":
                    plain.append(time_plain(workload))
                elif side == "traced":
                    traced.append(time_traced(workload, decode=False)[0])
                else:
                    seconds, events, lost = time_traced(workload, decode=True)
                    decoded.append(seconds)
                    dropped = max(dropped, lost)
        plain_median = statistics.median(plain)
        traced_median = statistics.median(traced)
        # The spread of the rounds' own ratios (each traced run over its round's plain run):
        # a figure near a target means little when the rounds disagree by more than the margin.
        pairs = sorted(t / p for t, p in zip(traced, plain, strict=True))
        if len(pairs) > 1:
            quartiles = statistics.quantiles(pairs, n=4)
            q1, q3 = quartiles[0], quartiles[2]
        else:
            q1 = q3 = pairs[0]
        decoded_median = statistics.median(decoded)
        results[name] = {
            "plain_s": round(plain_median, 5),
            "traced_s": round(traced_median, 5),
            "ratio": round(traced_median / plain_median, 3),
            "pair_ratio_q1": round(q1, 3),
            "pair_ratio_q3": round(q3, 3),
            "decode_s": round(decoded_median, 5),
            "decode_ratio": round(decoded_median / plain_median, 3),
            "events": events,
            "dropped_while_decoding": dropped,
            "rounds": rounds,
            "tracer": IMPLEMENTATION,
            "frames": frame_access(),
            "python": sys.version.split()[0],
        }
        if name in TARGETS:
            results[name]["target"] = TARGETS[name]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds per workload (default 15)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--only", default=",".join(WORKLOADS), help="workloads to run (default W1,W2,W3)"
    )
    parser.add_argument(
        "--frames", choices=("in place", "public"), help="how the C module reads frames"
    )
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",")]
    unknown = [name for name in only if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {unknown[0]!r} (choose from {', '.join(WORKLOADS)})")
    if args.frames and speedups is None:
        parser.error("--frames needs the C module")
    if args.frames:
        try:
            speedups.frame_access(args.frames)
        except ValueError as error:
            parser.error(str(error))
    results = measure(max(1, args.rounds), only)
    if args.json:
        print(json.dumps(results))
        return 0
    print(
        f"Python {sys.version.split()[0]}, tracer hot path in {IMPLEMENTATION} "
        f"(frames: {frame_access()}), {args.rounds} interleaved rounds in rotating order, medians"
    )
    print(
        f"{'':4} {'plain':>10} {'traced':>10} {'ratio':>7} {'pairs Q1-Q3':>12} {'target':>7} "
        f"{'+decode':>10} {'ratio':>7} {'events':>8} {'dropped':>8}"
    )
    for name, row in results.items():
        target = f"<={row['target']}" if "target" in row else "-"
        print(
            f"{name:4} {row['plain_s'] * 1000:>8.1f}ms {row['traced_s'] * 1000:>8.1f}ms "
            f"{row['ratio']:>7.3f} {row['pair_ratio_q1']:>6.3f}-{row['pair_ratio_q3']:<5.3f} "
            f"{target:>7} {row['decode_s'] * 1000:>8.1f}ms "
            f"{row['decode_ratio']:>7.3f} {row['events']:>8} {row['dropped_while_decoding']:>8}"
        )
    print(
        "pairs Q1-Q3: quartiles of each round's own ratio, how much the rounds agree\n"
        "dropped: events the decoding consumer lost to the bounded buffer (counted, never blocking)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
