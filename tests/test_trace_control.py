"""Clock and gate: speed, pause, step, step_task, from another thread, as the UI drives them."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from loopviz.trace import MAX_SPEED, MIN_SPEED, check_speed, new_event_loop
from loopviz.trace.clock import DilatedClock
from loopviz.trace.gate import ITERATION, TASK_STEP
from tracing import LoopThread, kinds, run_traced


async def ticker(stop_after: float = 30.0) -> int:
    """Sleep 10 ms of loop time at a time; returns how many ticks ran."""
    loop = asyncio.get_running_loop()
    ticks = 0
    while loop.time() < stop_after:
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks


def test_speed_01_makes_a_quarter_second_sleep_take_2_5_wall_seconds() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        before = loop.time()
        await asyncio.sleep(0.25)
        return loop.time() - before

    started = time.perf_counter()
    loop_seconds, events = run_traced(main, speed=0.1)
    wall = time.perf_counter() - started
    assert loop_seconds == pytest.approx(0.25, abs=0.01)
    assert wall == pytest.approx(2.5, abs=0.3)
    wait = next(e for e in kinds(events, "after_io_wait") if e["waited"] > 0.2)
    assert wait["waited_wall"] == pytest.approx(2.5, abs=0.3)


def test_speed_is_bounded() -> None:
    assert check_speed(MIN_SPEED) == 0.05 and check_speed(MAX_SPEED) == 20
    for bad in (0, 0.01, 21, -1, float("nan")):
        with pytest.raises(ValueError):
            check_speed(bad)
    loop = new_event_loop()
    try:
        with pytest.raises(ValueError):
            loop.set_speed(100)
    finally:
        loop.close()


def test_changing_speed_keeps_virtual_time_continuous() -> None:
    clock = DilatedClock(1.0)
    readings = []
    for speed in (20, 0.05, 5, 1):
        before = clock.now()
        clock.set_speed(speed)
        after = clock.now()
        readings.append(after - before)
        time.sleep(0.01)
    assert all(0 <= jump < 0.005 for jump in readings)
    clock.freeze()
    frozen = clock.now()
    time.sleep(0.02)
    assert clock.now() == pytest.approx(frozen, abs=1e-8)
    readings = [clock.now() for _ in range(5)]
    assert readings == sorted(set(readings))  # still strictly increasing, by a nanosecond
    clock.unfreeze()
    assert clock.now() > readings[-1]


def test_speed_change_mid_sleep_wakes_the_loop_and_keeps_loop_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        before = loop.time()
        await asyncio.sleep(1.0)
        return loop.time() - before

    with LoopThread(main, speed=0.1) as run:
        time.sleep(0.3)  # 0.03 s of loop time at 0.1x
        started = time.perf_counter()
        run.loop.set_speed(20)  # the remaining ~0.97 s of loop time take ~50 ms
    assert time.perf_counter() - started < 1.0
    # Continuous: a clock that failed to rebase would be off by seconds. At 20x each ms of
    # wake-up latency on a busy machine is 20 ms of loop time, hence the tolerance.
    assert run.result == pytest.approx(1.0, abs=0.1)


def test_pause_fires_nothing_for_a_second_of_wall_time() -> None:
    with LoopThread(ticker, paused=False) as run:
        time.sleep(0.1)
        run.loop.pause()
        run.wait_until_stopped()
        run.read()
        frozen = run.loop.time()
        time.sleep(1.0)
        during = run.read()
        assert during == []
        assert run.loop.time() == pytest.approx(
            frozen, abs=1e-6
        )  # a frozen clock ticks 1 ns a read
        run.loop.resume()
        time.sleep(0.1)
        assert kinds(run.read(), "before_task_step")
        run.loop.set_speed(20)


def test_step_runs_exactly_one_iteration() -> None:
    with LoopThread(ticker, paused=True) as run:
        assert run.wait_until_stopped() == ITERATION
        run.read()
        for _ in range(5):
            run.loop.step()
            time.sleep(0.05)
            assert run.wait_until_stopped() == ITERATION
            batch = run.read()
            waits = kinds(batch, "before_io_wait")
            assert len(waits) == 1, [e.kind for e in batch]
            assert len(kinds(batch, "after_io_wait")) == 1
        run.loop.set_speed(20)
        run.loop.resume()


def test_stepping_jumps_to_the_next_timer_without_waiting() -> None:
    async def slow() -> None:
        await asyncio.sleep(100)  # 100 s of loop time: stepping must not wait for it

    with LoopThread(slow, paused=True) as run:
        run.wait_until_stopped()
        started = time.perf_counter()
        for _ in range(4):
            run.loop.step()
            time.sleep(0.02)
            run.wait_until_stopped()
        assert time.perf_counter() - started < 2
        assert run.loop.time() >= 100
        run.loop.resume()


def test_step_task_stops_after_each_task_step() -> None:
    with LoopThread(ticker, paused=True) as run:
        run.wait_until_stopped()
        run.read()
        for _ in range(4):
            run.loop.step_task()
            time.sleep(0.02)
            assert run.wait_until_stopped() == TASK_STEP
            batch = run.read()
            assert len(kinds(batch, "after_task_step")) == 1
            kinds_seen = [e.kind for e in batch if e.kind != "clock"]
            assert kinds_seen[-2:] == ["after_task_step", "loop_held"], kinds_seen
            assert kinds(batch, "loop_held")[-1]["at"] == TASK_STEP
        run.loop.set_speed(20)
        run.loop.resume()


def test_control_emits_clock_events() -> None:
    with LoopThread(ticker, speed=2) as run:
        run.loop.pause()
        run.loop.set_speed(4)
        run.loop.step()
        run.loop.set_speed(20)
        run.loop.resume()
    clocks = [(e["speed"], e["paused"]) for e in kinds(run.read(), "clock")]
    assert clocks[:2] == [(2, False), (2, True)]  # the stream opens with the starting speed
    assert (4, True) in clocks
    assert clocks[-1] == (20, False)


def test_control_from_many_threads_never_deadlocks() -> None:
    with LoopThread(ticker, speed=20) as run:

        def hammer(seed: int) -> None:
            for i in range(200):
                action = (seed + i) % 4
                if action == 0:
                    run.loop.pause()
                elif action == 1:
                    run.loop.step()
                elif action == 2:
                    run.loop.step_task()
                else:
                    run.loop.resume()

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        run.loop.resume()
    assert run.result is not None and run.result > 0


def test_quick_step_presses_are_all_run() -> None:
    """Ten presses of n before the loop wakes run ten iterations, not one."""
    with LoopThread(ticker, paused=True) as run:
        run.wait_until_stopped()
        run.read()
        for _ in range(10):
            run.loop.step()
        time.sleep(0.3)
        run.wait_until_stopped()
        assert len(kinds(run.read(), "before_io_wait")) == 10
        run.loop.set_speed(20)
        run.loop.resume()


def test_speed_change_during_a_step_keeps_the_step_start_time() -> None:
    """The step began before the speed changed; its loop time must say so."""

    async def main() -> None:
        await asyncio.sleep(0.05)
        threading.Timer(0.15, lambda: loop.set_speed(2.0)).start()
        time.sleep(0.3)  # one step of 0.3 s wall: 0.15 s at 1x, then 0.15 s at 2x

    loop = new_event_loop()
    from loopviz.trace import EventStream

    stream = EventStream(loop)
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        runner.run(main())
    events = stream.read()
    after = next(e for e in kinds(events, "after_task_step") if e["duration"] > 0.25)
    before = [
        e
        for e in kinds(events, "before_task_step")
        if e.seq < after.seq and e["task"] == after["task"]
    ][-1]
    assert before.t == pytest.approx(0.05, abs=0.03)
    assert after.t - before.t == pytest.approx(0.15 + 0.3, abs=0.06)
