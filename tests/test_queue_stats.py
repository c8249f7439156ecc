"""QueueStats folds the queue scene's events into the numbers the UI shows, from events alone."""

from __future__ import annotations

from typing import Any

import pytest

from loopviz.models.queue_stats import ConsumerView, QueueStats
from loopviz.scenes.queue import simulate
from loopviz.trace import Event, read_jsonl


class Script:
    """Builds queue events by hand, with seq numbers and loop times."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.t = 0.0

    def at(self, t: float) -> Script:
        self.t = t
        return self

    def add(self, kind: str, **fields: Any) -> Script:
        fields = {"scene": "queue", **fields}
        self.events.append(Event(len(self.events), self.t, kind, fields))
        return self

    def stats(self, **options: Any) -> QueueStats:
        return QueueStats.from_events(self.events, **options)


def one_message_life(ack: str = "manual") -> Script:
    s = Script().add("queue.started", ack=ack).add("consumer.added", consumer=1)
    s.at(0.5).add("queue.published", msg=1, purpose="password reset", phone="010", code="1")
    s.add("queue.delivered", msg=1, consumer=1, delivery=1, redelivered=False, ack=ack)
    s.add("consumer.working", msg=1, consumer=1, delivery=1, direct=False)
    return s


def test_a_message_moves_ready_unacked_acked() -> None:
    s = Script().add("queue.started", ack="manual")
    s.at(0.5).add("queue.published", msg=1, purpose="identity check", phone="010", code="1")
    assert (s.stats().ready, s.stats().unacked) == (1, 0)
    s.add("queue.delivered", msg=1, consumer=1, delivery=1, redelivered=False, ack="manual")
    assert (s.stats().ready, s.stats().unacked) == (0, 1)
    s.at(0.85).add("queue.acked", msg=1, consumer=1, delivery=1)
    stats = s.stats()
    assert (stats.published, stats.ready, stats.unacked, stats.acked) == (1, 0, 0, 1)
    assert stats.balanced and stats.anomalies == 0


def test_consumer_views_say_what_each_consumer_is_doing() -> None:
    s = one_message_life()
    assert s.stats().consumers[1].activity == "working on #1"
    s.at(0.8).add("queue.processed", msg=1, consumer=1, delivery=1, direct=False)
    view = s.stats().consumers[1]
    assert (view.activity, view.held, view.processed) == ("acking #1", [1], 1)
    s.at(0.85).add("queue.acked", msg=1, consumer=1, delivery=1)
    assert s.stats().consumers[1] == ConsumerView(1, "up", None, None, [], 1)
    s.add("consumer.down", consumer=1, held=[], calls=[])
    assert s.stats().consumers[1].activity == "down" and s.stats().consumers_up == 0
    s.add("consumer.up", consumer=1).add("consumer.added", consumer=2)
    s.add("consumer.removing", consumer=2, held=[])
    assert s.stats().consumers[2].activity == "leaving" and s.stats().consumers_up == 1
    s.add("consumer.removed", consumer=2)
    assert list(s.stats().consumers) == [1]


def test_a_dead_consumers_unacked_message_goes_back_to_ready() -> None:
    s = one_message_life()
    s.at(0.6).add("consumer.down", consumer=1, held=[1], calls=[])
    s.add("queue.redelivered", msg=1, consumer=1, delivery=1, reason="down")
    stats = s.stats()
    assert (stats.ready, stats.unacked, stats.redelivered) == (1, 0, 1) and stats.balanced
    assert stats.oldest_ready_age() == pytest.approx(0.1), "age counts from publication"


def test_auto_ack_counts_as_acked_on_delivery_and_moves_to_lost_when_its_consumer_dies() -> None:
    s = one_message_life("auto")
    stats = s.stats()
    assert (stats.ready, stats.unacked, stats.acked) == (0, 0, 1)
    s.at(0.6).add("consumer.down", consumer=1, held=[1], calls=[])
    s.add("queue.lost", msg=1, consumer=1, delivery=1, reason="down")
    stats = s.stats()
    assert (stats.acked, stats.lost) == (0, 1) and stats.balanced and stats.anomalies == 0


def test_duplicates_count_messages_processed_more_than_once() -> None:
    s = one_message_life()
    s.at(0.8).add("queue.processed", msg=1, consumer=1, delivery=1, direct=False)
    s.add("consumer.down", consumer=1, held=[1], calls=[])
    s.add("queue.redelivered", msg=1, consumer=1, delivery=1, reason="down")
    s.add("consumer.up", consumer=1)
    s.add("queue.delivered", msg=1, consumer=1, delivery=2, redelivered=True, ack="manual")
    s.at(1.2).add("queue.processed", msg=1, consumer=1, delivery=2, direct=False)
    s.add("queue.acked", msg=1, consumer=1, delivery=2)
    stats = s.stats()
    assert (stats.processed, stats.duplicates, stats.acked) == (2, 1, 1)


def test_no_queue_counts_direct_calls_and_failed_requests() -> None:
    s = Script().add("queue.started", ack="none")
    s.add("queue.called", msg=1, consumer=1, purpose="password reset", phone="010", code="1")
    s.add("queue.processed", msg=1, consumer=1, delivery=None, direct=True)
    s.add("queue.request_failed", msg=2, purpose="identity check", consumer=None, reason="down")
    stats = s.stats()
    assert (stats.direct_calls, stats.failed_requests, stats.published) == (1, 1, 0)
    assert stats.mode == "none" and stats.balanced


def test_rates_are_counted_over_a_sliding_window_of_loop_time() -> None:
    s = Script().add("queue.started", ack="manual")
    for n in range(1, 21):  # two publications per second from t=0.5 to t=10
        s.at(n / 2).add("queue.published", msg=n, purpose="p", phone="010", code="1")
    stats = s.stats(window=5.0)
    assert stats.publish_rate == pytest.approx(2.0)
    assert stats.deliver_rate == 0 and stats.ack_rate == 0
    assert stats.rate(stats._publish_times, now=12.5) == pytest.approx(1.0)
    assert s.stats(window=2.0).publish_rate == pytest.approx(2.0)
    early = Script().add("queue.started", ack="manual")
    early.at(0.5).add("queue.published", msg=1, purpose="p", phone="010", code="1")
    assert early.stats().publish_rate == pytest.approx(2.0), "no under-reporting at the start"


def test_oldest_ready_age_and_drain_estimate() -> None:
    s = Script().add("queue.started", ack="manual")
    for n in range(1, 11):
        s.at(n / 2).add("queue.published", msg=n, purpose="p", phone="010", code="1")
    stats = s.stats()
    assert stats.oldest_ready_age() == pytest.approx(4.5)
    assert stats.oldest_ready_age(now=6.0) == pytest.approx(5.5)
    assert stats.drain_eta is None, "nothing is delivered: not draining"
    for n in range(1, 10):  # a consumer takes 9 in the next second
        s.at(5.0 + n / 9).add(
            "queue.delivered", msg=n, consumer=1, delivery=1, redelivered=False, ack="auto"
        )
    stats = s.stats()
    # In the 5 s up to t=6: 9 deliveries, 8 publications; 0.2/s net drains the last one in 5 s.
    assert stats.ready == 1 and stats.drain_eta == pytest.approx(1 / 0.2)
    assert QueueStats().drain_eta == 0.0 and QueueStats().oldest_ready_age() is None


def test_anomalies_catch_events_that_disagree_with_the_state_or_the_broker() -> None:
    s = one_message_life()
    s.add("queue.acked", msg=7, consumer=1, delivery=1)  # never published
    stats = s.stats()
    assert stats.anomalies == 1 and "#7" in (stats.last_anomaly or "")
    assert not stats.balanced
    wrong = one_message_life()
    wrong.add("queue.burst", count=1, ready=3, unacked=1)
    assert wrong.stats().anomalies == 1 and "broker has ready=3" in wrong.stats().last_anomaly


def test_dropped_events_and_other_scenes_are_accounted_for() -> None:
    s = one_message_life()
    s.events.append(Event(99, 1.0, "events_dropped", {"count": 4, "total": 4}))
    s.events.append(Event(100, 1.0, "queue.published", {"scene": "other", "msg": 9}))
    s.events.append(Event(101, 1.0, "before_task_step", {"task": 1}))
    stats = s.stats()
    assert stats.dropped == 4 and stats.published == 1 and stats.t == 0.5


def test_stats_fold_from_plain_dicts_as_from_events() -> None:
    events = one_message_life().events
    assert QueueStats.from_events([e.to_dict() for e in events]) == QueueStats.from_events(events)


def test_stats_from_jsonl_equal_stats_fed_live(tmp_path: Any) -> None:
    events = simulate(
        [(1.0, "burst"), (2.0, "consumer-down"), (4.0, "ack-auto"), (6.0, "consumer-up")],
        until=12.0,
        consumers=2,
        prefetch=2,
    )
    live = QueueStats()
    for event in events:
        live.apply(event)
    path = tmp_path / "queue.jsonl"
    path.write_text("".join(e.to_json() + "\n" for e in events), encoding="utf-8")
    replayed = QueueStats.from_events(read_jsonl(str(path)))
    assert replayed == live
    assert any(t != round(t, 6) for t in (e.t for e in events)), "live times are not rounded"
    assert live.published > 0 and live.lost + live.acked + live.ready + live.unacked > 0


def test_the_bars_scale_follows_the_biggest_backlog_so_far() -> None:
    """A backlog of 15 fills 15/20 of the bar (it was full from 10 up); the scale is the peak
    so far, which never falls, so a draining backlog shows as a shrinking bar."""
    from loopviz.ui.widgets._queue_panel import bar_scale

    assert [bar_scale(n) for n in (0, 10, 11, 15, 20, 21, 150, 20000)] == [
        10,
        10,
        20,
        20,
        20,
        50,
        200,
        20000,
    ]
    stats = QueueStats()
    for msg in range(15):
        stats.apply(
            {
                "kind": "queue.published",
                "t": msg / 10,
                "seq": msg,
                "msg": msg,
                "purpose": "password reset",
                "phone": "010",
                "code": "1",
            }
        )
    assert (stats.ready, stats.peak, bar_scale(stats.peak)) == (15, 15, 20)


def test_the_waiting_requests_are_listed_oldest_first_with_what_they_ask_for() -> None:
    stats = QueueStats()
    for msg, purpose in enumerate(("password reset", "identity check", "password reset")):
        stats.apply(
            {
                "kind": "queue.published",
                "t": msg,
                "seq": msg,
                "msg": msg,
                "purpose": purpose,
                "phone": f"010-{msg}",
                "code": f"{msg}{msg}",
            }
        )
    stats.apply(
        {
            "kind": "queue.delivered",
            "t": 3,
            "seq": 3,
            "msg": 0,
            "consumer": 1,
            "delivery": 1,
            "redelivered": False,
            "ack": "manual",
        }
    )
    assert [(m, r.purpose, r.phone, r.code) for m, r in stats.waiting()] == [
        (1, "identity check", "010-1", "11"),
        (2, "password reset", "010-2", "22"),
    ]
    stats.apply({"kind": "queue.acked", "t": 4, "seq": 4, "msg": 0, "consumer": 1, "delivery": 1})
    assert 0 not in stats.requests  # gone with the message


def test_the_held_requests_name_their_consumer() -> None:
    stats = QueueStats()
    stats.apply(
        {
            "kind": "queue.published",
            "t": 0,
            "seq": 0,
            "msg": 7,
            "purpose": "identity check",
            "phone": "010-7",
            "code": "77",
        }
    )
    stats.apply(
        {
            "kind": "queue.delivered",
            "t": 1,
            "seq": 1,
            "msg": 7,
            "consumer": 2,
            "delivery": 1,
            "redelivered": False,
            "ack": "manual",
        }
    )
    assert [(m, r.code, c) for m, r, c in stats.held()] == [(7, "77", 2)]
