"""Timeline lanes and their cells, from real runs, hand-made edge cases and properties."""

from __future__ import annotations

import asyncio
import itertools
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from loopviz.models.timeline import Timeline, mark_cells
from loopviz.scenes.tasks import TasksScene
from loopviz.trace import Event
from tracing import run_traced


async def _scene(variant: str) -> None:
    await TasksScene(asyncio.get_running_loop(), variant).run()


@cache
def recorded(variant: str, speed: float = 1.0, virtual: bool = True) -> tuple[Event, ...]:
    _, events = run_traced(lambda: _scene(variant), virtual_time=virtual, speed=speed)
    return tuple(events)


def ev(seq: int, t: float, kind: str, **fields: object) -> Event:
    return Event(seq, t, kind, fields)


def lane_of(timeline: Timeline, name: str) -> int:
    return next(lane.task for lane in timeline.lanes.values() if lane.name == name)


# -- real runs ---------------------------------------------------------------------------------


def test_async_tasks_run_in_every_quarter_second_cell() -> None:
    timeline = Timeline(window=60)
    events = recorded("async")
    timeline.apply_all(events)
    start = next(e.t for e in events if e.kind == "before_task_step")
    t0 = round(start, 6)
    cells = timeline.cells(t0 - 0.125, t0 + 6.375, 26)  # cells centred on the 0.25 s ticks
    numbers, alphabet = lane_of(timeline, "print_numbers"), lane_of(timeline, "print_alphabet")
    assert cells[numbers] == [True] * 26
    assert cells[alphabet] == [True] * 26


def test_sync_runs_one_after_the_other_in_the_main_task() -> None:
    timeline = Timeline(window=60)
    timeline.apply_all(recorded("compare"))
    names = [lane.name for lane in timeline.rows()]
    assert {"async group", "sync group", "print_numbers", "print_alphabet"} <= set(names)
    async_lane = timeline.lane_cells(lane_of(timeline, "print_numbers"), 0, 13.0, 13)
    sync_lane = timeline.lane_cells(lane_of(timeline, "sync group"), 0, 13.0, 13)
    assert async_lane[:6] == [True] * 6 and async_lane[7:] == [False] * 6  # done by 6.5 s
    assert sync_lane == [True] * 13  # the sync group keeps stepping to the end


def test_on_a_real_clock_no_two_tasks_ever_run_at_once_and_stalls_are_steps() -> None:
    timeline = Timeline(window=60)
    timeline.apply_all(recorded("blocking", speed=20, virtual=False))
    spans = sorted(span for lane in timeline.lanes.values() for span in lane.runs)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start
    assert len(timeline.stalls) == 52
    for start, end, task in timeline.stalls:
        assert (start, end) in timeline.lanes[task].runs
        assert end - start > 0.2  # 0.25 s of loop time, frozen
    t0, t1 = timeline.bounds()
    stalled = timeline.stall_cells(t0 + 1, t1 - 1, 40)
    assert all(stalled)  # the whole middle of the run is one stall after another


# -- edge cases --------------------------------------------------------------------------------


def test_a_step_in_progress_runs_until_the_end_of_the_window() -> None:
    timeline = Timeline()
    timeline.apply(ev(0, 1.0, "before_task_step", task=3, name="sleeper"))
    assert timeline.rows()[0].name == "sleeper"  # first seen mid-stream, named by the event
    assert timeline.lane_cells(3, 0.0, 4.0, 4) == [False, True, True, True]
    assert timeline.lane_cells(99, 0.0, 4.0, 4) == [False] * 4


def test_memory_stays_bounded_and_finished_lanes_leave() -> None:
    timeline = Timeline(window=1.0, max_spans=100)
    seq = 0
    for step in range(5000):
        t = step * 0.01
        for kind in ("before_task_step", "after_task_step"):
            timeline.apply(ev(seq, t, kind, task=1, name="busy", done=False))
            seq += 1
    assert len(timeline.lanes[1].runs) <= 101
    assert timeline.lanes[1].runs[0][1] >= timeline.now - 1.0 - 1.0 / 8
    timeline.apply(ev(seq, 50.0, "task_exited", task=1, name="busy", outcome="returned"))
    timeline.apply(ev(seq + 1, 52.0, "clock", speed=1.0, paused=False, stepping=False))
    assert timeline.lanes == {}


def test_mark_cells_edges() -> None:
    assert mark_cells([(0.01, 0.011)], 0, 1, 10) == [True] + [False] * 9  # shorter than a cell
    assert mark_cells([(0.5, 0.5)], 0, 1, 4) == [False, False, True, False]  # an instant
    assert mark_cells([(0.0, 0.25)], 0, 1, 4) == [True, False, False, False]  # ends on an edge
    assert mark_cells([(1.0, 1.0)], 0, 1, 4) == [False, False, False, True]  # at t1
    assert mark_cells([(-5, 5)], 0, 1, 3) == [True] * 3
    assert mark_cells([(2, 3), (-3, -2)], 0, 1, 3) == [False] * 3
    assert mark_cells([(0, 1)], 1, 1, 3) == [False] * 3  # an empty window


def test_unknown_kinds_are_ignored() -> None:
    timeline = Timeline()
    timeline.apply(ev(0, 0.5, "queue.published", scene="queue"))
    timeline.apply(ev(1, 0.5, "mystery"))
    assert timeline.lanes == {} and timeline.now == 0.5


# -- properties --------------------------------------------------------------------------------

_times = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


def reference(spans: list[tuple[float, float]], t0: float, t1: float, width: int) -> list[bool]:
    """Cell by cell: does a span overlap [a, b) (the last cell includes t1)?"""
    edges = [*(t0 + (t1 - t0) * i / width for i in range(width)), t1]
    cells = []
    for i in range(width):
        a, b = edges[i], edges[i + 1]
        last = i == width - 1
        cells.append(
            any((s < b or (last and s <= b)) and (e > a or (s == e and s >= a)) for s, e in spans)
        )
    return cells


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(_times, st.floats(0, 3, allow_nan=False)), max_size=8),
    _times,
    st.floats(0.001, 10, allow_nan=False),
    st.integers(1, 50),
)
def test_property_cells_match_a_cell_by_cell_reference(
    raw: list[tuple[float, float]], t0: float, length: float, width: int
) -> None:
    spans = [(start, start + size) for start, size in raw]
    t1 = t0 + length
    assert mark_cells(spans, t0, t1, width) == reference(spans, t0, t1, width)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 0.2, allow_nan=False), st.floats(0, 0.2)), max_size=40),
    st.integers(1, 60),
)
def test_property_every_step_marks_the_cell_it_ran_in(
    gaps: list[tuple[float, float]], width: int
) -> None:
    timeline, t, seq = Timeline(window=1000), 0.0, 0
    for gap, length in gaps:
        t = round(t + gap, 6)
        timeline.apply(ev(seq, t, "before_task_step", task=1, name="a"))
        t = round(t + length, 6)
        timeline.apply(ev(seq + 1, t, "after_task_step", task=1, name="a", done=False))
        seq += 2
    if not gaps:
        return
    t1 = max(t, 0.001)
    cells = timeline.lane_cells(1, 0.0, t1, width)
    for start, _ in timeline.lanes[1].runs:
        index = min(int(start / t1 * width), width - 1)
        assert any(cells[max(0, index - 1) : index + 2])
    assert cells == mark_cells(list(timeline.lanes[1].runs), 0.0, t1, width)


def test_an_eager_tasks_first_step_interrupts_its_parents_run() -> None:
    from test_models_tasks import eager_stream

    timeline = Timeline(window=60)
    for event in eager_stream():
        timeline.apply(event)
    assert timeline.running is None
    assert list(timeline.lanes[1].runs) == [(0.0, 0.1), (0.2, 0.3)]  # the child ran between
    assert list(timeline.lanes[2].runs) == [(0.1, 0.2)]
    assert timeline.lanes[2].name == "child"


def test_tasks_sharing_a_column_are_numbered_in_the_order_they_ran() -> None:
    """In the async run print_numbers and print_alphabet step in the same quarter second: the
    lanes must not draw them side by side as if in parallel, but say who went first."""
    timeline = Timeline(window=60)
    events = recorded("async")
    timeline.apply_all(events)
    start = round(next(e.t for e in events if e.kind == "before_task_step"), 6)
    turns = timeline.turns(start - 0.125, start + 6.375, 26)
    numbers, alphabet = lane_of(timeline, "print_numbers"), lane_of(timeline, "print_alphabet")
    # Every tick print_numbers steps first (it was created first), then print_alphabet; in
    # the first column the main task that created them went before both.
    assert turns[numbers][1:] == [1] * 25 and turns[alphabet][1:] == [2] * 25
    assert turns[numbers][0] == 2 and turns[alphabet][0] == 3


def test_a_task_alone_in_its_column_is_first_and_idle_cells_are_zero() -> None:
    timeline = Timeline(window=60)
    timeline.apply_all(
        [
            ev(0, 0.0, "task_spawned", task=1, name="a", user=True),
            ev(1, 1.0, "before_task_step", task=1, name="a"),
            ev(2, 1.1, "after_task_step", task=1, name="a", done=False),
        ]
    )
    assert timeline.turns(0.0, 4.0, 4) == {1: [0, 1, 0, 0]}
