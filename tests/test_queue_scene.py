"""Scene ``queue``: the stories it tells, asserted from its events and QueueStats folded from them.

Most runs use ``simulate`` (virtual time: exact and instant); the recorded run goes through the
real SceneRunner thread at 20x and a JSONL round trip, as ``loopviz record`` does.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterable

import pytest

from loopviz.models.queue_stats import QueueStats
from loopviz.runner import SceneRunner, SceneSpec, ScheduledAction
from loopviz.scenes import SceneError, scene_class
from loopviz.scenes.queue import QueueOptions, QueueScene, simulate
from loopviz.trace import Event, new_event_loop


def scene_events(events: Iterable[Event], *kinds: str) -> list[Event]:
    wanted = kinds or None
    return [
        e
        for e in events
        if e.kind.startswith(("queue.", "consumer.")) and (wanted is None or e.kind in wanted)
    ]


def folded(events: Iterable[Event]) -> list[tuple[Event, QueueStats]]:
    """Each queue event with a copy of QueueStats as it is after that event."""
    stats = QueueStats()
    out = []
    for event in scene_events(events):
        stats.apply(event)
        assert stats.balanced and stats.anomalies == 0, stats.last_anomaly
        out.append((event, copy.deepcopy(stats)))
    return out


def ready_at(history: list[tuple[Event, QueueStats]], t: float) -> int:
    """The ready count after the last event at or before loop time ``t``."""
    return [stats.ready for event, stats in history if event.t <= t + 1e-6][-1]


# -- the recorded run: consumer down from t=2 s to t=6 s --------------------------------------


@pytest.fixture(scope="module")
def recorded() -> tuple[list[Event], str]:
    """A real run (traced loop thread at 20x) and its JSONL text."""
    runner = SceneRunner(
        [SceneSpec("queue")],
        speed=20.0,
        duration=30.0,
        schedule=[
            ScheduledAction(2.0, "queue", "consumer-down"),
            ScheduledAction(6.0, "queue", "consumer-up"),
        ],
    )
    runner.start()
    try:
        assert runner.join(20), "the run did not stop at its duration"
    finally:
        runner.stop()
    assert runner.failures == {}
    events = runner.stream.read()
    assert runner.stream.dropped == 0
    return events, "".join(event.to_json() + "\n" for event in events)


def test_recorded_run_ready_rises_while_the_consumer_is_down_and_drains_after(
    recorded: tuple[list[Event], str],
) -> None:
    _, jsonl = recorded
    replayed = [Event.from_json(line) for line in io.StringIO(jsonl)]
    history = folded(replayed)
    down = [e.t for e in scene_events(replayed, "consumer.down")]
    up = [e.t for e in scene_events(replayed, "consumer.up")]
    assert down == [pytest.approx(2.0, abs=0.3)] and up == [pytest.approx(6.0, abs=0.3)]

    while_down = [stats.ready for event, stats in history if down[0] <= event.t <= up[0]]
    assert while_down == sorted(while_down), "ready only rises while nobody consumes"
    assert while_down[-1] - while_down[0] >= 6, "about 2 requests/s for 4 s pile up"
    assert scene_events(replayed, "queue.delivered")
    assert not [e for e in scene_events(replayed, "queue.delivered") if down[0] < e.t < up[0]]

    after = [(event.t, stats.ready) for event, stats in history if event.t > up[0]]
    drained = next(t for t, ready in after if ready == 0)
    assert up[0] < drained < 25.0, "the backlog drains in seconds"
    assert max(ready for t, ready in after if t > drained) <= 1, "and stays drained"
    final = history[-1][1]
    assert final.lost == 0 and final.published == final.acked + final.ready + final.unacked


def test_recorded_run_stats_from_jsonl_equal_stats_fed_live(
    recorded: tuple[list[Event], str], tmp_path: object
) -> None:
    events, jsonl = recorded
    live = QueueStats()
    for event in events:
        live.apply(event)
    path = tmp_path / "queue.jsonl"  # type: ignore[operator]
    path.write_text(jsonl, encoding="utf-8")
    from loopviz.trace import read_jsonl

    assert QueueStats.from_events(read_jsonl(str(path))) == live
    assert live.published > 40 and live.acked > 40


def test_virtual_run_down_2_to_6_is_exact() -> None:
    events = simulate([(2.0, "consumer-down"), (6.0, "consumer-up")], until=30.0)
    history = folded(events)
    # Requests every 0.5 s from t=0.5; each one takes 0.3 s of work + 0.05 s for the ack.
    assert ready_at(history, 1.99) == 0
    assert ready_at(history, 5.99) == 8  # t=2.0, 2.5 ... 5.5, none delivered
    assert ready_at(history, 6.01) == 8  # one delivered at 6.0, one published at 6.0
    # The drain estimate uses 5-second rates, so it settles a few seconds after the return.
    estimates = {round(e.t, 1): s.drain_eta for e, s in history if e.kind == "queue.published"}
    assert estimates[7.0] is None, "the window still remembers the outage"
    assert 3 < estimates[11.0] < 8  # ready=4 at 2.8 - 2.0 per second: 5 s; really 3.5 s
    drained = next(e.t for e, stats in history if e.t > 6 and stats.ready == 0)
    assert 14 < drained < 18
    last = history[-1][1]
    assert (last.lost, last.duplicates, last.redelivered) == (0, 0, 0)
    assert last.publish_rate == pytest.approx(2.0, abs=0.21)


def test_the_same_options_and_schedule_give_the_same_events() -> None:
    def run() -> tuple[list[tuple[str, dict[str, object]]], list[float]]:
        events = scene_events(
            simulate([(2.0, "consumer-down"), (3.1, "burst"), (6.0, "consumer-up")])
        )
        return [(e.kind, dict(e.fields)) for e in events], [e.t for e in events]

    (first, first_times), (second, second_times) = run(), run()
    assert first == second
    # Virtual time still carries a few microseconds of the loop's own set-up and bookkeeping.
    assert second_times == pytest.approx(first_times, abs=1e-3)


# -- manual ack: redelivery, duplicates --------------------------------------------------------


def test_a_consumer_dying_mid_work_gets_its_message_redelivered() -> None:
    # Message #1 is delivered at 0.5 and worked on until 0.8; the consumer dies at 0.6.
    events = simulate([(0.6, "consumer-down"), (1.0, "consumer-up")], requests=3)
    redelivered = scene_events(events, "queue.redelivered")
    assert [(e["msg"], e["consumer"], e["delivery"]) for e in redelivered] == [(1, 1, 1)]
    second = [e for e in scene_events(events, "queue.delivered") if e["msg"] == 1][-1]
    assert (second["delivery"], second["redelivered"]) == (2, True)
    stats = QueueStats.from_events(events)
    assert (stats.acked, stats.lost, stats.duplicates, stats.redelivered) == (3, 0, 0, 1)


def test_a_consumer_dying_after_the_work_before_the_ack_sends_a_duplicate() -> None:
    # #1 is processed at 0.8; its ack reaches the broker at 0.85. Die in between.
    events = simulate([(0.82, "consumer-down"), (1.0, "consumer-up")], requests=3)
    processed = [e["msg"] for e in scene_events(events, "queue.processed")]
    assert processed.count(1) == 2
    stats = QueueStats.from_events(events)
    assert (stats.acked, stats.duplicates, stats.processed) == (3, 1, 4)


def test_dying_after_the_ack_arrived_sends_no_duplicate() -> None:
    events = simulate([(0.9, "consumer-down"), (1.0, "consumer-up")], requests=3)
    assert QueueStats.from_events(events).duplicates == 0


# -- auto ack: loss ----------------------------------------------------------------------------


def test_auto_ack_consumer_dying_mid_work_loses_the_message() -> None:
    events = simulate([(0.6, "consumer-down"), (1.0, "consumer-up")], ack="auto", requests=3)
    lost = scene_events(events, "queue.lost")
    assert [(e["msg"], e["consumer"]) for e in lost] == [(1, 1)]
    assert 1 not in [e["msg"] for e in scene_events(events, "queue.processed")]
    stats = QueueStats.from_events(events)
    assert (stats.published, stats.acked, stats.lost, stats.unacked) == (3, 2, 1, 0)
    assert scene_events(events, "queue.acked") == [], "auto ack: the delivery is the ack"


def test_auto_ack_with_prefetch_loses_everything_the_consumer_held() -> None:
    schedule = [(0.7, "burst"), (0.75, "consumer-down"), (2.0, "consumer-up")]
    events = simulate(schedule, ack="auto", prefetch=3, requests=2)
    down = scene_events(events, "consumer.down")[0]
    assert len(down["held"]) == 3
    assert [e["msg"] for e in scene_events(events, "queue.lost")] == down["held"]


# -- no queue --------------------------------------------------------------------------------


def test_no_queue_requests_fail_while_the_sender_is_down() -> None:
    events = simulate([(2.0, "consumer-down"), (6.0, "consumer-up")], ack="none", requests=20)
    failed = scene_events(events, "queue.request_failed")
    assert [e["msg"] for e in failed] == [4, 5, 6, 7, 8, 9, 10, 11]  # t = 2.0 ... 5.5
    assert {e["reason"] for e in failed} == {"no SMS sender is up"}
    assert scene_events(events, "queue.published") == []
    stats = QueueStats.from_events(events)
    assert (stats.failed_requests, stats.direct_calls, stats.processed) == (8, 12, 12)
    assert stats.published == 0 and stats.balanced


def test_no_queue_a_sender_dying_mid_call_fails_that_request() -> None:
    events = simulate([(0.6, "consumer-down"), (1.0, "consumer-up")], ack="none", requests=3)
    failed = scene_events(events, "queue.request_failed")
    assert [(e["msg"], e["consumer"]) for e in failed] == [(1, 1)]
    assert QueueStats.from_events(events).failed_requests == 1


# -- consumers -------------------------------------------------------------------------------


def test_consumer_down_takes_the_lowest_up_and_up_restarts_the_lowest_down() -> None:
    schedule = [(1.0, "consumer-down"), (1.1, "consumer-down"), (2.0, "consumer-up")]
    events = simulate(schedule, consumers=3, until=3.0)
    assert [e["consumer"] for e in scene_events(events, "consumer.down")] == [1, 2]
    assert [e["consumer"] for e in scene_events(events, "consumer.up")] == [1]
    stats = QueueStats.from_events(events)
    assert {c.id: c.state for c in stats.consumers.values()} == {1: "up", 2: "down", 3: "up"}
    assert stats.consumers_up == 2


def test_competing_consumers_drain_a_burst_faster() -> None:
    def drained_at(consumers: int) -> float:
        events = simulate([(0.1, "burst"), (0.1, "burst")], consumers=consumers, requests=1)
        return scene_events(events, "queue.finished")[0].t

    assert drained_at(4) < drained_at(1) / 3


def test_remove_consumer_is_graceful_and_add_stops_at_eight() -> None:
    schedule = [(0.6, "remove-consumer")] + [(1.0, "add-consumer")] * 9
    events = simulate(schedule, consumers=1, requests=4)
    kinds = [e.kind for e in scene_events(events, "consumer.removing", "consumer.removed")]
    assert kinds == ["consumer.removing", "consumer.removed"]
    assert scene_events(events, "queue.redelivered") == []
    processed = [e for e in scene_events(events, "queue.processed") if e["msg"] == 1]
    assert [e["consumer"] for e in processed] == [1], "it finished what it held"
    added = [e["consumer"] for e in scene_events(events, "consumer.added")]
    assert added == [1, 1, 2, 3, 4, 5, 6, 7, 8]
    assert scene_events(events, "queue.ignored")[0]["action"] == "add-consumer"


def test_tasks_are_named_for_the_task_panel() -> None:
    events = simulate([(1.0, "add-consumer")], until=2.0)
    names = {e["name"] for e in events if e.kind == "task_spawned"}
    assert {"api producer", "broker", "sms consumer#1", "sms consumer#2"} <= names


# -- ack modes switched live ------------------------------------------------------------------


def test_cycle_ack_goes_manual_auto_none_manual() -> None:
    schedule = [(1.0, "cycle-ack"), (2.0, "cycle-ack"), (3.0, "cycle-ack")]
    events = simulate(schedule, until=4.0)
    modes = [(e["previous"], e["ack"]) for e in scene_events(events, "queue.mode")]
    assert modes == [("manual", "auto"), ("auto", "none"), ("none", "manual")]
    stats = QueueStats.from_events(events)
    assert stats.mode == "manual" and stats.direct_calls == 2  # t = 2.0 and 2.5


def test_a_delivery_keeps_its_ack_mode_after_a_switch() -> None:
    # #1 is delivered under manual ack at 0.5; switch to auto at 0.6, it still needs its ack.
    events = simulate([(0.6, "ack-auto")], requests=2)
    assert [e["msg"] for e in scene_events(events, "queue.acked")] == [1]
    assert [e["ack"] for e in scene_events(events, "queue.delivered")] == ["manual", "auto"]
    stats = QueueStats.from_events(events)
    assert stats.acked == 2 and stats.balanced


def test_switching_to_no_queue_still_drains_the_backlog() -> None:
    schedule = [(0.4, "consumer-down"), (2.9, "consumer-up"), (3.0, "ack-none")]
    events = simulate(schedule, requests=10)
    stats = QueueStats.from_events(events)
    assert stats.published == 5 and stats.acked == 5 and stats.direct_calls == 5


# -- options and actions ------------------------------------------------------------------------


def test_defaults_fit_the_story() -> None:
    options = QueueOptions.parse({})
    assert (options.ack, options.consumers, options.rate, options.work, options.prefetch) == (
        "manual",
        1,
        2.0,
        0.3,
        1,
    )
    assert 1 / (options.work + options.ack_delay) > options.rate, "one consumer keeps up"
    assert QueueOptions.parse({"ack": "no-queue", "consumers": None}).ack == "none"
    assert QueueScene.default_duration == 30.0
    assert scene_class("queue") is QueueScene


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ack": "sometimes"}, "ack must be manual, auto or none"),
        ({"consumers": 9}, "consumers must be between 0 and 8"),
        ({"consumers": 1.5}, "consumers must be a whole number"),
        ({"burst": float("inf")}, "burst must be a whole number"),
        ({"work": float("nan")}, "work must be above 0"),
        ({"rate": 0}, "rate must be above 0"),
        ({"rate": "fast"}, "rate must be a number"),
        ({"work": -1}, "work must be above 0"),
        ({"prefetch": 0}, "prefetch must be between 1 and 100"),
        ({"ack_delay": -0.1}, "ack_delay must be at least 0"),
        ({"colour": "red"}, "has no option 'colour'"),
    ],
)
def test_bad_options_are_one_line_scene_errors(options: dict[str, object], message: str) -> None:
    loop = new_event_loop()
    try:
        with pytest.raises(SceneError, match=message) as error:
            QueueScene(loop, None, **options)
        assert "\n" not in str(error.value)
    finally:
        loop.close()


def test_unknown_action_is_a_scene_error() -> None:
    with pytest.raises(SceneError, match="no action 'reboot'"):
        simulate([(1.0, "reboot")])
    with pytest.raises(SceneError, match="no action 'reboot'"):
        SceneRunner([SceneSpec("queue")], schedule=[ScheduledAction(1.0, "queue", "reboot")])


def test_actions_at_time_zero_wait_for_the_scene_to_start() -> None:
    events = simulate([(0.0, "consumer-down")], until=1.9)
    assert [e["consumer"] for e in scene_events(events, "consumer.down")] == [1]
    assert QueueStats.from_events(events).ready == 3
