"""A small in-process message broker with RabbitMQ's semantics, running on the asyncio loop.

It is the queue scene's broker, so the lesson is only as true as this module. The rules, named
as RabbitMQ names them:

- A published message is **ready** until the broker delivers it to a consumer.
- A delivery under **manual** ack makes the message **unacked**: the consumer holds it, and the
  broker forgets it only when the consumer's ack arrives. ``prefetch`` (``basic_qos``) caps how
  many messages one consumer holds at a time.
- A delivery under **auto** ack (``basic_consume(..., auto_ack=True)``) *is* the ack: the broker
  forgets the message as it hands it over. RabbitMQ then ignores ``prefetch`` and pushes as fast
  as the network allows, so a real client can hold (and lose) a whole buffer; this broker still
  hands each consumer at most ``prefetch`` messages at a time (the consumer's ``release`` after
  its work returns the credit), so what a dying consumer loses stays countable and small.
- When a consumer's channel closes (the consumer died), every message it held unacked returns
  to ready, marked **redelivered**, at its original place in the queue (ready stays in publish
  order), and is delivered again: at-least-once. Auto-acked messages it held and had not
  finished are **lost**: the broker had already forgotten them.
- An ack that reaches a closed channel is dropped (the message was already requeued).

Every event the broker emits carries its own ``ready`` and ``unacked`` counts after the change,
so a model folded from the events can check itself against the broker.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

AckMode = Literal["manual", "auto"]

#: Where events go: ``sink(kind, fields)``.
Sink = Callable[[str, dict[str, Any]], None]


@dataclass(eq=False)
class Message:
    """One verification-code request, as published by the API."""

    id: int
    purpose: str
    phone: str
    code: str
    published_at: float
    #: How many times the broker has delivered it (1 after the first delivery).
    deliveries: int = 0

    def body(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "phone": self.phone, "code": self.code}


@dataclass(eq=False)
class Delivery:
    """One hand-over of a message to a consumer (RabbitMQ's delivery tag)."""

    message: Message
    consumer: int
    #: The message's delivery count at this hand-over: 1 = first, 2+ = redelivered.
    number: int
    ack: AckMode

    @property
    def redelivered(self) -> bool:
        return self.number > 1


@dataclass(eq=False)
class Subscription:
    """One consumer's channel: ``basic_consume`` with a ``prefetch``, delivering into ``inbox``."""

    consumer: int
    prefetch: int
    inbox: asyncio.Queue[Any]
    #: Deliveries handed over and not yet settled, by message id, in delivery order.
    held: dict[int, Delivery] = field(default_factory=dict)
    #: ``basic_cancel``: the consumer keeps what it holds but gets nothing new.
    cancelled: bool = False
    closed: bool = False

    @property
    def has_room(self) -> bool:
        return not self.cancelled and not self.closed and len(self.held) < self.prefetch


class Broker:
    """One queue, its consumers, and a dispatcher task that hands ready messages out."""

    def __init__(self, sink: Sink, *, ack_mode: AckMode = "manual") -> None:
        self._sink = sink
        #: The ack mode of new deliveries (each subscription re-subscribes with it on a switch).
        self.ack_mode: AckMode = ack_mode
        #: Ready messages in publish order (requeued ones go back to their place).
        self.ready: deque[Message] = deque()
        self._subscriptions: list[Subscription] = []
        self._turn = 0  # round-robin position among subscriptions
        self._wakeup = asyncio.Event()

    # -- counts ------------------------------------------------------------------------------

    @property
    def unacked(self) -> int:
        """Messages delivered under manual ack whose ack has not arrived."""
        return sum(1 for sub in self._subscriptions for d in sub.held.values() if d.ack == "manual")

    @property
    def held(self) -> int:
        """Deliveries not yet settled (unacked, plus auto-acked ones still being worked on)."""
        return sum(len(sub.held) for sub in self._subscriptions)

    @property
    def idle(self) -> bool:
        """Nothing ready and nothing held: every published message is settled."""
        return not self.ready and self.held == 0

    def emit(self, kind: str, **fields: Any) -> None:
        """Emit an event with the broker's own ``ready`` and ``unacked`` counts attached."""
        fields["ready"] = len(self.ready)
        fields["unacked"] = self.unacked
        self._sink(kind, fields)

    # -- the AMQP-ish operations -----------------------------------------------------------

    def publish(self, message: Message) -> None:
        """``basic_publish``: the message is ready until a consumer has room for it."""
        self.ready.append(message)
        self.emit("queue.published", msg=message.id, **message.body())
        self._wakeup.set()

    def subscribe(self, consumer: int, prefetch: int, inbox: asyncio.Queue[Any]) -> Subscription:
        """``basic_qos(prefetch)`` + ``basic_consume``: deliveries start arriving in ``inbox``."""
        sub = Subscription(consumer, prefetch, inbox)
        self._subscriptions.append(sub)
        self._wakeup.set()
        return sub

    def cancel(self, sub: Subscription) -> None:
        """``basic_cancel``: no new deliveries; what the consumer holds stays its own."""
        sub.cancelled = True

    def ack(self, delivery: Delivery, sub: Subscription) -> bool:
        """``basic_ack``: the broker forgets the message. False if the channel had closed."""
        if sub.closed or sub.held.get(delivery.message.id) is not delivery:
            return False
        del sub.held[delivery.message.id]
        self.emit(
            "queue.acked",
            msg=delivery.message.id,
            consumer=delivery.consumer,
            delivery=delivery.number,
        )
        self._wakeup.set()
        return True

    def release(self, delivery: Delivery, sub: Subscription) -> None:
        """An auto-acked message is finished: its consumer has room again (no event: the
        broker had already forgotten it)."""
        if sub.held.get(delivery.message.id) is delivery:
            del sub.held[delivery.message.id]
            self._wakeup.set()

    def close(self, sub: Subscription, reason: str) -> None:
        """The consumer's channel closed: requeue what it held unacked, lose what it held
        auto-acked and unfinished. Events come in delivery order."""
        if sub.closed:
            return
        sub.closed = True
        for delivery in list(sub.held.values()):
            message = delivery.message
            del sub.held[message.id]  # one at a time, so each event's counts are exact
            if delivery.ack == "manual":
                self._requeue(message)
                self.emit(
                    "queue.redelivered",
                    msg=message.id,
                    consumer=delivery.consumer,
                    delivery=delivery.number,
                    reason=reason,
                )
            else:
                self.emit(
                    "queue.lost",
                    msg=message.id,
                    consumer=delivery.consumer,
                    delivery=delivery.number,
                    reason=reason,
                )
        self._subscriptions.remove(sub)
        self._wakeup.set()

    # -- dispatch ---------------------------------------------------------------------------

    async def dispatch_forever(self) -> None:
        """The broker's own task: wake on any change, hand out what fits."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            self.dispatch()

    def dispatch(self) -> int:
        """Deliver ready messages round-robin to consumers with room; return how many."""
        delivered = 0
        while self.ready:
            sub = self._next_with_room()
            if sub is None:
                break
            self._deliver(self.ready.popleft(), sub)
            delivered += 1
        return delivered

    def _next_with_room(self) -> Subscription | None:
        subs = self._subscriptions
        for step in range(len(subs)):
            index = (self._turn + step) % len(subs)
            if subs[index].has_room:
                self._turn = index + 1
                return subs[index]
        return None

    def _deliver(self, message: Message, sub: Subscription) -> None:
        message.deliveries += 1
        delivery = Delivery(message, sub.consumer, message.deliveries, self.ack_mode)
        sub.held[message.id] = delivery
        sub.inbox.put_nowait(delivery)
        self.emit(
            "queue.delivered",
            msg=message.id,
            consumer=sub.consumer,
            delivery=delivery.number,
            redelivered=delivery.redelivered,
            ack=delivery.ack,
        )

    def _requeue(self, message: Message) -> None:
        """Back to its original place: ready is kept in message-id (publish) order."""
        bisect.insort(self.ready, message, key=_message_id)


def _message_id(message: Message) -> int:
    return message.id
