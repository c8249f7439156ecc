"""Property tests of the queue scene over random schedules of down/up/add/remove/burst.

Each example runs the real scene (API, broker and consumer tasks) on a virtual-time traced loop,
so timers fire at once and a 20-second run takes milliseconds. The expectations are computed
from the events independently of QueueStats, then compared with it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopviz.models.queue_stats import QueueStats
from loopviz.scenes.queue import simulate
from loopviz.trace import Event

REQUESTS = 30  # 15 s of requests at 2/s
RESTORE_AT = 21.0  # after every scheduled action: bring every consumer back
CONSUMER_ACTIONS = ("consumer-down", "consumer-up", "add-consumer", "remove-consumer", "burst")
MODE_ACTIONS = ("ack-manual", "ack-auto", "ack-none", "cycle-ack")

SETTINGS = settings(deadline=None, max_examples=80, suppress_health_check=[HealthCheck.too_slow])


def schedules(actions: Iterable[str]) -> st.SearchStrategy[list[tuple[float, str]]]:
    """Up to 25 actions at loop times 0..20 s, on a 10 ms grid (so deaths land mid-work,
    mid-ack and between messages)."""
    moment = st.integers(0, 2000).map(lambda n: n / 100)
    return st.lists(st.tuples(moment, st.sampled_from(tuple(actions))), max_size=25)


scene_options = st.fixed_dictionaries(
    {
        "consumers": st.integers(1, 3),
        "prefetch": st.integers(1, 3),
        "ack_delay": st.sampled_from([0.0, 0.05, 0.2]),
        "burst": st.integers(1, 6),
        "seed": st.integers(0, 1000),
    }
)


def run(schedule: list[tuple[float, str]], **options: object) -> list[Event]:
    """The scene with ``schedule``, then every consumer back, until every request is settled."""
    restore = [(RESTORE_AT, "add-consumer")] + [(RESTORE_AT, "consumer-up")] * 8
    events = simulate(sorted(schedule) + restore, until=600, requests=REQUESTS, **options)
    return [e for e in events if e.kind.startswith(("queue.", "consumer."))]


def fold_checking_balance(events: list[Event]) -> QueueStats:
    stats = QueueStats()
    for event in events:
        stats.apply(event)
        assert stats.balanced, f"unbalanced after {event.to_json()}"
        assert stats.anomalies == 0, stats.last_anomaly
    assert stats.finished, "the scene did not settle every request"
    return stats


def msgs(events: list[Event], kind: str) -> list[int]:
    return [e["msg"] for e in events if e.kind == kind]


@SETTINGS
@given(schedule=schedules(CONSUMER_ACTIONS), options=scene_options)
def test_manual_ack_loses_nothing_and_duplicates_only_after_a_death_before_the_ack(
    schedule: list[tuple[float, str]], options: dict[str, object]
) -> None:
    events = run(schedule, ack="manual", **options)
    stats = fold_checking_balance(events)

    published = msgs(events, "queue.published")
    assert len(published) == len(set(published)) >= REQUESTS
    acked = Counter(msgs(events, "queue.acked"))
    assert set(acked) == set(published) and set(acked.values()) == {1}, "each acked exactly once"
    assert msgs(events, "queue.lost") == [] and stats.lost == 0
    assert (stats.ready, stats.unacked, stats.acked) == (0, 0, len(published))

    # Which processings were followed by their consumer's death before the ack arrived?
    waiting_for_ack: dict[int, set[int]] = defaultdict(set)
    unacked_held: dict[int, set[int]] = defaultdict(set)
    died_before_ack: Counter[int] = Counter()
    requeued_at_deaths: list[int] = []
    for e in events:
        if e.kind == "queue.delivered":
            unacked_held[e["consumer"]].add(e["msg"])
        elif e.kind == "queue.processed":
            waiting_for_ack[e["consumer"]].add(e["msg"])
        elif e.kind == "queue.acked":
            waiting_for_ack[e["consumer"]].discard(e["msg"])
            unacked_held[e["consumer"]].discard(e["msg"])
        elif e.kind == "consumer.down":
            died_before_ack.update(waiting_for_ack.pop(e["consumer"], set()))
            requeued_at_deaths.extend(sorted(unacked_held.pop(e["consumer"], set())))
    processed = Counter(msgs(events, "queue.processed"))
    assert set(processed) == set(published)
    for msg, times in processed.items():
        assert times == 1 + died_before_ack[msg], f"#{msg} processed {times} times"
    assert stats.duplicates == sum(1 for times in processed.values() if times > 1)
    assert sorted(msgs(events, "queue.redelivered")) == sorted(requeued_at_deaths)
    assert stats.redelivered == len(requeued_at_deaths)


@SETTINGS
@given(schedule=schedules(CONSUMER_ACTIONS), options=scene_options)
def test_auto_ack_loses_exactly_what_was_in_flight_when_consumers_died(
    schedule: list[tuple[float, str]], options: dict[str, object]
) -> None:
    events = run(schedule, ack="auto", **options)
    stats = fold_checking_balance(events)

    in_flight: dict[int, list[int]] = defaultdict(list)
    lost_at_deaths: list[int] = []
    for e in events:
        if e.kind == "queue.delivered":
            assert e["ack"] == "auto"
            in_flight[e["consumer"]].append(e["msg"])
        elif e.kind == "queue.processed":
            in_flight[e["consumer"]].remove(e["msg"])
        elif e.kind == "consumer.down":
            died_holding = in_flight.pop(e["consumer"], [])
            assert e["held"] == died_holding
            lost_at_deaths.extend(died_holding)
    lost = msgs(events, "queue.lost")
    assert lost == lost_at_deaths
    assert stats.lost == len(lost_at_deaths)

    published = msgs(events, "queue.published")
    processed = Counter(msgs(events, "queue.processed"))
    assert set(processed).isdisjoint(lost), "a lost message was never sent"
    assert set(processed) | set(lost) == set(published), "nothing else is lost"
    assert set(processed.values()) == {1} and stats.duplicates == 0
    assert msgs(events, "queue.redelivered") == [] and msgs(events, "queue.acked") == []
    assert (stats.ready, stats.unacked) == (0, 0)
    assert stats.acked + stats.lost == stats.published == len(published)


@SETTINGS
@given(schedule=schedules(CONSUMER_ACTIONS + MODE_ACTIONS), options=scene_options)
def test_switching_ack_mode_live_settles_every_request_exactly_once(
    schedule: list[tuple[float, str]], options: dict[str, object]
) -> None:
    events = run(schedule, **options)
    stats = fold_checking_balance(events)

    published = set(msgs(events, "queue.published"))
    called = set(msgs(events, "queue.called"))
    failed = Counter(msgs(events, "queue.request_failed"))
    lost = set(msgs(events, "queue.lost"))
    acked = Counter(msgs(events, "queue.acked"))
    direct_done = {e["msg"] for e in events if e.kind == "queue.processed" and e["direct"]}
    auto_delivered = {
        e["msg"] for e in events if e.kind == "queue.delivered" and e["ack"] == "auto"
    }
    requests = published | called | set(failed)
    assert requests == set(range(1, len(requests) + 1)), "every request is accounted for"
    assert published.isdisjoint(called) and published.isdisjoint(failed)
    assert set(failed.values()) <= {1} and direct_done.isdisjoint(failed)
    assert called == direct_done | (called & set(failed)), "a direct call is answered or fails"
    assert set(acked.values()) <= {1}
    # A queued message ends acked by its consumer, or acked on delivery (auto), or lost.
    assert published == set(acked) | auto_delivered
    assert lost <= auto_delivered - set(acked)
    assert (stats.ready, stats.unacked) == (0, 0)
    assert stats.acked + stats.lost == stats.published == len(published)
    assert stats.direct_calls == len(called) and stats.failed_requests == sum(failed.values())
