"""The in-process broker: RabbitMQ's ready/unacked/acked rules, prefetch, redelivery, auto-ack loss.

The broker's operations are synchronous (its task only calls ``dispatch``), so most tests drive
it directly and read what it emitted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from loopviz.models.queue_stats import QueueStats
from loopviz.scenes.broker import Broker, Delivery, Message, Subscription
from loopviz.trace import Event, new_event_loop


class Recorder:
    """A sink that keeps the broker's events as Event records (t is the event number)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, kind: str, fields: dict[str, Any]) -> None:
        n = len(self.events)
        self.events.append(Event(n, float(n), kind, dict(fields)))

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def of(self, kind: str) -> list[tuple[int, int]]:
        """``(msg, delivery)`` of each event of ``kind``."""
        return [(e["msg"], e["delivery"]) for e in self.events if e.kind == kind]


def make(ack: str = "manual") -> tuple[Broker, Recorder]:
    recorder = Recorder()
    return Broker(recorder, ack_mode=ack), recorder  # type: ignore[arg-type]


def publish(broker: Broker, *ids: int) -> None:
    for msg in ids:
        broker.publish(Message(msg, "password reset", "010-0000-0000", "123456", 0.0))


def subscribe(broker: Broker, consumer: int, prefetch: int = 1) -> Subscription:
    return broker.subscribe(consumer, prefetch, asyncio.Queue())


def take(sub: Subscription) -> Delivery:
    return sub.inbox.get_nowait()


def test_messages_are_ready_until_delivered_and_unacked_until_acked() -> None:
    broker, rec = make()
    publish(broker, 1, 2, 3)
    assert [m.id for m in broker.ready] == [1, 2, 3] and broker.unacked == 0
    sub = subscribe(broker, 1, prefetch=1)
    assert broker.dispatch() == 1, "prefetch 1: one message at a time"
    assert [m.id for m in broker.ready] == [2, 3] and broker.unacked == 1
    first = take(sub)
    assert (first.message.id, first.number, first.redelivered) == (1, 1, False)
    assert broker.ack(first, sub)
    assert broker.unacked == 0 and broker.dispatch() == 1
    assert rec.kinds()[-3:] == ["queue.delivered", "queue.acked", "queue.delivered"]


def test_prefetch_caps_what_one_consumer_holds() -> None:
    broker, _ = make()
    publish(broker, *range(1, 8))
    sub = subscribe(broker, 1, prefetch=3)
    assert broker.dispatch() == 3
    assert list(sub.held) == [1, 2, 3] and len(broker.ready) == 4


def test_deliveries_go_round_robin_to_competing_consumers() -> None:
    broker, rec = make()
    subscribe(broker, 1)
    subscribe(broker, 2)
    publish(broker, 1, 2)
    broker.dispatch()
    delivered = [(e["msg"], e["consumer"]) for e in rec.events if e.kind == "queue.delivered"]
    assert delivered == [(1, 1), (2, 2)]


def test_a_closed_channel_requeues_its_unacked_messages_at_their_place_marked_redelivered() -> None:
    broker, rec = make()
    publish(broker, 1, 2, 3, 4)
    sub = subscribe(broker, 1, prefetch=2)
    broker.dispatch()  # holds 1 and 2; 3 and 4 are ready
    broker.close(sub, reason="consumer#1 went down")
    assert [m.id for m in broker.ready] == [1, 2, 3, 4], "back in publish order"
    assert rec.of("queue.redelivered") == [(1, 1), (2, 1)]
    assert broker.unacked == 0
    again = subscribe(broker, 2)
    broker.dispatch()
    delivery = take(again)
    assert (delivery.message.id, delivery.number, delivery.redelivered) == (1, 2, True)


def test_an_ack_that_arrives_after_the_channel_closed_is_dropped() -> None:
    broker, rec = make()
    publish(broker, 1)
    sub = subscribe(broker, 1)
    broker.dispatch()
    delivery = take(sub)
    broker.close(sub, reason="down")
    assert not broker.ack(delivery, sub)
    assert "queue.acked" not in rec.kinds() and [m.id for m in broker.ready] == [1]


def test_auto_ack_delivery_is_the_ack_and_a_dying_consumer_loses_what_it_held() -> None:
    broker, rec = make("auto")
    publish(broker, 1, 2, 3)
    sub = subscribe(broker, 1, prefetch=2)
    broker.dispatch()
    assert broker.unacked == 0 and list(sub.held) == [1, 2]
    broker.release(take(sub), sub)  # #1 done: room for #3
    broker.dispatch()
    broker.close(sub, reason="down")
    assert rec.of("queue.lost") == [(2, 1), (3, 1)]
    assert not broker.ready and broker.idle


def test_a_delivery_keeps_the_ack_mode_it_was_made_under() -> None:
    broker, rec = make()
    publish(broker, 1, 2)
    sub = subscribe(broker, 1, prefetch=2)
    broker.dispatch()
    broker.ack_mode = "auto"
    manual = take(sub)
    publish(broker, 3)
    broker.ack(manual, sub)
    broker.dispatch()
    assert [d.ack for d in sub.held.values()] == ["manual", "auto"]
    broker.close(sub, reason="down")
    assert rec.of("queue.redelivered") == [(2, 1)] and rec.of("queue.lost") == [(3, 1)]


def test_cancel_stops_new_deliveries_but_keeps_what_is_held() -> None:
    broker, _ = make()
    publish(broker, 1, 2)
    sub = subscribe(broker, 1)
    broker.dispatch()
    broker.cancel(sub)
    assert broker.ack(take(sub), sub)
    assert broker.dispatch() == 0 and [m.id for m in broker.ready] == [2]


def test_every_event_carries_the_brokers_counts_and_folds_balanced() -> None:
    broker, rec = make()
    a, b = subscribe(broker, 1, prefetch=2), subscribe(broker, 2)
    publish(broker, 1, 2, 3, 4, 5)
    broker.dispatch()
    broker.ack(take(a), a)
    broker.dispatch()
    broker.close(a, reason="down")
    broker.ack(take(b), b)
    broker.dispatch()
    stats = QueueStats()
    for event in rec.events:
        stats.apply(event)
        assert (event["ready"], event["unacked"]) == (stats.ready, stats.unacked)
        assert stats.balanced and stats.anomalies == 0
    assert (stats.published, stats.acked, stats.redelivered) == (5, 2, 2)


def test_the_dispatcher_task_delivers_when_woken() -> None:
    loop = new_event_loop(virtual_time=True)
    broker, _ = make()

    async def main() -> list[int]:
        dispatcher = asyncio.create_task(broker.dispatch_forever(), name="broker")
        sub = subscribe(broker, 1)
        publish(broker, 1)
        first = await asyncio.wait_for(sub.inbox.get(), 1)
        publish(broker, 2)
        broker.ack(first, sub)
        second = await asyncio.wait_for(sub.inbox.get(), 1)
        dispatcher.cancel()
        await asyncio.gather(dispatcher, return_exceptions=True)
        return [first.message.id, second.message.id]

    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        assert runner.run(main()) == [1, 2]
