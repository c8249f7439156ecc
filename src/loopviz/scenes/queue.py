"""Scene ``queue``: a message queue fills while its consumer is down and drains when it returns.

The story (from the course notes): an API issues verification codes, for a password reset and for
an identity check. Each request publishes a message; an SMS sender (the consumer) takes it, works
on it for a while, and acknowledges it. Take the consumer down and requests keep being accepted:
the messages wait in the queue and are sent when it comes back. Nothing is faked: the API, the
broker and every consumer are asyncio tasks on the traced loop, the work is ``asyncio.sleep``, and
taking a consumer down cancels its task wherever it is.

Ack modes (option ``ack``; actions ``ack-manual``/``ack-auto``/``ack-none``/``cycle-ack``):

``manual`` (default)
    The consumer acks after the work. A consumer that dies hands its unacked messages back to the
    queue, marked redelivered: nothing is lost. The ack needs ``ack_delay`` seconds to reach the
    broker; a consumer that dies in that window has done the work but the broker never heard, so
    the message is processed twice (a duplicate SMS): why consumers must be idempotent.
``auto``
    ``auto_ack=True``: delivery is the ack. A consumer that dies mid-work loses what it held.
``none``
    No queue at all: the API calls an SMS sender directly. While no sender is up, requests fail;
    a sender that dies fails the calls it had taken.

Switching mode live: deliveries keep the ack mode they were made under (a message delivered
under manual ack still needs its ack after a switch to auto, and is requeued if its consumer dies;
one delivered under auto stays acked). Switching to ``none`` stops publishing, but the broker still
delivers its backlog (under the last queue mode) to the senders, which serve it alongside direct
calls; switching back publishes again. So every request ends exactly once as acked, lost, failed
or answered directly.

Consumers: ``consumer-down`` takes down the lowest-numbered consumer that is up and
``consumer-up`` restarts the lowest-numbered one that is down (both crash-style: the task is
cancelled mid-work, the channel closes). ``add-consumer`` adds one (at most 8, lowest free number)
and ``remove-consumer`` removes the highest-numbered one gracefully: ``basic_cancel``, finish and
ack what it holds, then leave (a consumer that is down is simply dropped).

``simulate(schedule, **options)`` runs the scene on a virtual-time loop and returns its events:
instant and repeatable, for tests and classroom scripts. Event fields: ``docs/events-queue.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from loopviz.scenes.base import Scene, SceneError
from loopviz.scenes.broker import AckMode, Broker, Delivery, Message, Subscription
from loopviz.trace import Event, EventStream, TracedEventLoop, new_event_loop

ACK_MODES = ("manual", "auto", "none")
MAX_CONSUMERS = 8
PURPOSES = ("password reset", "identity check")
#: Room for every event of a long simulated run (a simulation has no reader to drain it).
SIMULATION_CAPACITY = 1 << 22


# -- options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueOptions:
    """The scene's options, validated. Defaults: one consumer keeps up with the API, not by much
    (2 requests/s against about 2.9 messages/s), so a backlog drains visibly, in seconds."""

    ack: str = "manual"
    consumers: int = 1
    rate: float = 2.0
    work: float = 0.3
    prefetch: int = 1
    ack_delay: float = 0.05
    burst: int = 10
    #: Regular requests the API issues before it stops (None: forever). Bursts come on top.
    requests: int | None = None
    seed: int = 0

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> QueueOptions:
        """Check every option; a bad one raises SceneError with a one-line message."""
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            names = ", ".join(cls.__dataclass_fields__)
            raise SceneError(f"scene 'queue' has no option {unknown[0]!r}; options: {names}")
        given = {k: v for k, v in options.items() if v is not None}
        ack = str(given.get("ack", cls.ack))
        ack = "none" if ack == "no-queue" else ack
        if ack not in ACK_MODES:
            raise SceneError(f"queue option ack must be manual, auto or none, not {ack!r}")
        requests = given.get("requests")
        return cls(
            ack=ack,
            consumers=_integer(given, "consumers", cls.consumers, 0, MAX_CONSUMERS),
            rate=_number(given, "rate", cls.rate, 0.0, 50.0, low_open=True),
            work=_number(given, "work", cls.work, 0.0, 60.0, low_open=True),
            prefetch=_integer(given, "prefetch", cls.prefetch, 1, 100),
            ack_delay=_number(given, "ack_delay", cls.ack_delay, 0.0, 10.0),
            burst=_integer(given, "burst", cls.burst, 1, 1000),
            requests=None if requests is None else _integer(given, "requests", 0, 0, 1_000_000),
            seed=_integer(given, "seed", cls.seed, 0, 2**32),
        )


def _integer(given: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = given.get(name, default)
    try:
        if isinstance(value, bool) or float(value) != int(value):
            raise ValueError
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise SceneError(f"queue option {name} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise SceneError(f"queue option {name} must be between {low} and {high}, not {number}")
    return number


def _number(
    given: Mapping[str, Any],
    name: str,
    default: float,
    low: float,
    high: float,
    *,
    low_open: bool = False,
) -> float:
    value = given.get(name, default)
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise SceneError(f"queue option {name} must be a number, not {value!r}") from None
    too_low = number <= low if low_open else number < low
    if too_low or number > high or number != number:
        bound = f"above {low:g}" if low_open else f"at least {low:g}"
        raise SceneError(f"queue option {name} must be {bound} and at most {high:g}, not {value!r}")
    return number


# -- consumers ---------------------------------------------------------------------------------


@dataclass(eq=False)
class Call:
    """A direct call from the API to an SMS sender (``ack=none``: there is no queue)."""

    message: Message


@dataclass(eq=False)
class Consumer:
    """One SMS sender slot. Each time it comes up it gets a new task, inbox and channel."""

    id: int
    state: str = "down"  # "up" | "down" | "leaving"
    task: asyncio.Task[None] | None = None
    sub: Subscription | None = None
    inbox: asyncio.Queue[Delivery | Call | None] | None = None
    #: Direct calls taken and not yet answered, by request id.
    calls: dict[int, Call] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"consumer#{self.id}"

    def holding(self) -> list[int]:
        """Message ids it holds from the broker, in delivery order."""
        return list(self.sub.held) if self.sub is not None else []


# -- the scene ---------------------------------------------------------------------------------


class QueueScene(Scene):
    """An API, a broker and SMS senders; the user takes senders down and up."""

    name = "queue"
    title = "A message queue: requests wait while the consumer is down"
    actions: ClassVar[tuple[str, ...]] = (
        "consumer-down",
        "consumer-up",
        "add-consumer",
        "remove-consumer",
        "burst",
        "ack-manual",
        "ack-auto",
        "ack-none",
        "cycle-ack",
    )
    default_duration: ClassVar[float | None] = 30.0

    def __init__(self, loop: TracedEventLoop, variant: str | None = None, **options: Any) -> None:
        super().__init__(loop, variant, **options)
        self.config = QueueOptions.parse(options)
        #: "manual" | "auto" | "none"; the broker keeps the last queue mode while this is "none".
        self.mode = self.config.ack
        first: AckMode = "auto" if self.mode == "auto" else "manual"
        self.broker = Broker(self._sink, ack_mode=first)
        self.consumers: dict[int, Consumer] = {}
        self._rng = random.Random(self.config.seed)
        self._next_request = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._producing = True
        self._running = False
        self._closed = False
        self._pending_actions: list[str] = []
        self._finished = asyncio.Event()

    # -- the main coroutine -------------------------------------------------------------------

    async def run(self) -> None:
        self._running = True
        config = self.config
        self.broker.emit(
            "queue.started",
            ack=self.mode,
            consumers=config.consumers,
            rate=config.rate,
            work=config.work,
            prefetch=config.prefetch,
            ack_delay=config.ack_delay,
            burst=config.burst,
            requests=config.requests,
        )
        self._spawn(self.broker.dispatch_forever(), "broker")
        for _ in range(config.consumers):
            self._add_consumer()
        self._spawn(self._produce(), "api producer")
        for action in self._pending_actions:
            self.act(action)
        self._pending_actions.clear()
        self._maybe_finish()
        try:
            await self._finished.wait()
            self.broker.emit("queue.finished")
        finally:
            await self._shutdown()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = self.loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _shutdown(self) -> None:
        """Cancel every task the scene started and wait for them, so none outlives the scene."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _maybe_finish(self) -> None:
        """With a ``requests`` limit, the scene ends once every request is settled."""
        if not self._running or self._producing or not self.broker.idle:
            return
        if any(consumer.calls for consumer in self.consumers.values()):
            return
        self._finished.set()

    # -- the API -------------------------------------------------------------------------------

    async def _produce(self) -> None:
        """Issue requests at ``rate`` per loop second, on an absolute schedule (no drift)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        issued = 0
        limit = self.config.requests
        while limit is None or issued < limit:
            issued += 1
            await asyncio.sleep(max(0.0, start + issued / self.config.rate - loop.time()))
            self._request()
        self._producing = False
        self._maybe_finish()

    def _request(self) -> None:
        """One verification-code request: published, or (no queue) a direct call."""
        self._next_request += 1
        rng = self._rng
        message = Message(
            id=self._next_request,
            purpose=rng.choice(PURPOSES),
            phone=f"010-{rng.randrange(10_000):04d}-{rng.randrange(10_000):04d}",
            code=f"{rng.randrange(1_000_000):06d}",
            published_at=self.loop.time(),
        )
        if self.mode == "none":
            self._call(message)
        else:
            self.broker.publish(message)

    def _call(self, message: Message) -> None:
        """No queue: hand the request to the least busy sender that is up, or fail it."""
        up = [c for c in self.consumers.values() if c.state == "up"]
        if not up:
            self.broker.emit(
                "queue.request_failed",
                msg=message.id,
                purpose=message.purpose,
                consumer=None,
                reason="no SMS sender is up",
            )
            return
        sender = min(up, key=lambda c: (len(c.calls), c.id))
        call = Call(message)
        sender.calls[message.id] = call
        assert sender.inbox is not None
        sender.inbox.put_nowait(call)
        self.broker.emit("queue.called", msg=message.id, consumer=sender.id, **message.body())

    # -- the SMS senders -------------------------------------------------------------------------

    async def _consume(
        self,
        consumer: Consumer,
        inbox: asyncio.Queue[Delivery | Call | None],
        sub: Subscription,
    ) -> None:
        """One sender's life: take a job, do it, ack it; None means leave (remove-consumer).

        The inbox and channel are this incarnation's own, so a cancelled task never touches
        the ones a restart made."""
        while True:
            job = await inbox.get()
            if job is None:
                break
            if isinstance(job, Call):
                await self._answer(consumer, job)
            else:
                await self._handle(consumer, sub, job)
            self._maybe_finish()
        self._retire(consumer, sub)

    async def _handle(self, consumer: Consumer, sub: Subscription, delivery: Delivery) -> None:
        message = delivery.message
        where = {"msg": message.id, "consumer": consumer.id, "delivery": delivery.number}
        self.broker.emit("consumer.working", **where, direct=False)
        await asyncio.sleep(self.config.work)  # sending the SMS
        self.broker.emit("queue.processed", **where, direct=False)
        if delivery.ack == "auto":
            self.broker.release(delivery, sub)  # acked on delivery: nothing to send
            return
        await asyncio.sleep(self.config.ack_delay)  # the ack travels to the broker
        self.broker.ack(delivery, sub)

    async def _answer(self, consumer: Consumer, call: Call) -> None:
        where = {"msg": call.message.id, "consumer": consumer.id, "delivery": None}
        self.broker.emit("consumer.working", **where, direct=True)
        await asyncio.sleep(self.config.work)  # sending the SMS while the API waits
        del consumer.calls[call.message.id]
        self.broker.emit("queue.processed", **where, direct=True)

    def _start(self, consumer: Consumer) -> None:
        inbox: asyncio.Queue[Delivery | Call | None] = asyncio.Queue()
        sub = self.broker.subscribe(consumer.id, self.config.prefetch, inbox)
        consumer.state, consumer.inbox, consumer.sub = "up", inbox, sub
        consumer.task = self._spawn(
            self._consume(consumer, inbox, sub), f"sms consumer#{consumer.id}"
        )

    def _retire(self, consumer: Consumer, sub: Subscription) -> None:
        """A removed consumer has finished what it held: close its channel and go."""
        self.broker.close(sub, reason=f"{consumer.name} was removed")
        if self.consumers.get(consumer.id) is consumer:
            del self.consumers[consumer.id]
        self.broker.emit("consumer.removed", consumer=consumer.id)
        self._maybe_finish()

    # -- actions -------------------------------------------------------------------------------

    def act(self, action: str) -> None:
        handler = self._handlers().get(action)
        if handler is None:
            raise SceneError(f"scene 'queue' has no action {action!r}")
        if self._closed:
            self.broker.emit("queue.ignored", action=action, reason="the scene has ended")
            return
        if not self._running:
            self._pending_actions.append(action)  # taken as soon as the scene starts
            return
        handler()

    def _handlers(self) -> dict[str, Any]:
        return {
            "consumer-down": self._take_down,
            "consumer-up": self._bring_up,
            "add-consumer": self._add_consumer,
            "remove-consumer": self._remove_consumer,
            "burst": self._burst,
            "ack-manual": lambda: self._set_mode("manual"),
            "ack-auto": lambda: self._set_mode("auto"),
            "ack-none": lambda: self._set_mode("none"),
            "cycle-ack": self._cycle_mode,
        }

    def _ignored(self, action: str, reason: str) -> None:
        self.broker.emit("queue.ignored", action=action, reason=reason)

    def _take_down(self) -> None:
        """Crash the lowest-numbered consumer that is up: its task is cancelled mid-whatever."""
        consumer = next((c for c in self._by_id() if c.state == "up"), None)
        if consumer is None:
            self._ignored("consumer-down", "no consumer is up")
            return
        assert consumer.task is not None and consumer.sub is not None
        consumer.task.cancel()
        sub, calls = consumer.sub, list(consumer.calls.values())
        self.broker.emit(
            "consumer.down",
            consumer=consumer.id,
            held=consumer.holding(),
            calls=[call.message.id for call in calls],
        )
        consumer.state, consumer.task, consumer.sub, consumer.inbox = "down", None, None, None
        consumer.calls.clear()
        self.broker.close(sub, reason=f"{consumer.name} went down")
        for call in calls:
            self.broker.emit(
                "queue.request_failed",
                msg=call.message.id,
                purpose=call.message.purpose,
                consumer=consumer.id,
                reason="the SMS sender went down during the call",
            )
        self._maybe_finish()

    def _bring_up(self) -> None:
        """Restart the lowest-numbered consumer that is down."""
        consumer = next((c for c in self._by_id() if c.state == "down"), None)
        if consumer is None:
            self._ignored("consumer-up", "no consumer is down")
            return
        self.broker.emit("consumer.up", consumer=consumer.id)
        self._start(consumer)

    def _add_consumer(self) -> None:
        free = [n for n in range(1, MAX_CONSUMERS + 1) if n not in self.consumers]
        if not free:
            self._ignored("add-consumer", f"already {MAX_CONSUMERS} consumers")
            return
        consumer = Consumer(free[0])
        self.consumers[consumer.id] = consumer
        self.broker.emit("consumer.added", consumer=consumer.id)
        self._start(consumer)

    def _remove_consumer(self) -> None:
        """Remove the highest-numbered consumer: gracefully if up, at once if down."""
        consumer = next((c for c in reversed(self._by_id()) if c.state != "leaving"), None)
        if consumer is None:
            self._ignored("remove-consumer", "no consumer to remove")
            return
        if consumer.state == "down":
            del self.consumers[consumer.id]
            self.broker.emit("consumer.removed", consumer=consumer.id)
            self._maybe_finish()
            return
        assert consumer.sub is not None and consumer.inbox is not None
        consumer.state = "leaving"
        self.broker.cancel(consumer.sub)
        consumer.inbox.put_nowait(None)
        self.broker.emit("consumer.removing", consumer=consumer.id, held=consumer.holding())

    def _burst(self) -> None:
        self.broker.emit("queue.burst", count=self.config.burst)
        for _ in range(self.config.burst):
            self._request()

    def _set_mode(self, mode: str) -> None:
        if mode == self.mode:
            self._ignored(f"ack-{mode}", f"the ack mode is already {mode}")
            return
        previous, self.mode = self.mode, mode
        if mode != "none":
            self.broker.ack_mode = "auto" if mode == "auto" else "manual"
        self.broker.emit("queue.mode", ack=mode, previous=previous)

    def _cycle_mode(self) -> None:
        self._set_mode(ACK_MODES[(ACK_MODES.index(self.mode) + 1) % len(ACK_MODES)])

    def _by_id(self) -> list[Consumer]:
        return [self.consumers[n] for n in sorted(self.consumers)]

    def _sink(self, kind: str, fields: dict[str, Any]) -> None:
        self.emit(kind, **fields)


# -- headless, instant runs ----------------------------------------------------------------------


def simulate(
    schedule: Iterable[tuple[float, str]] = (),
    *,
    until: float | None = None,
    **options: Any,
) -> list[Event]:
    """Run the scene on a virtual-time loop (timers fire at once, in order) and return every
    event: the same code and events as a live run, for tests and classroom scripts.

    ``schedule`` is ``(loop time, action)`` pairs. The run ends when the scene does (with a
    ``requests`` limit, once every request is settled) or at ``until`` loop seconds, by default
    ``default_duration`` when there is no limit."""
    if until is None and options.get("requests") is None:
        until = QueueScene.default_duration
    loop = new_event_loop(virtual_time=True, capacity=SIMULATION_CAPACITY)
    stream = EventStream(loop)
    try:
        scene = QueueScene(loop, None, **options)
        for _, action in schedule:
            if action not in QueueScene.actions:
                raise SceneError(f"scene 'queue' has no action {action!r}")
    except BaseException:
        loop.close()
        raise

    async def main() -> None:
        for at, action in schedule:
            loop.call_at(at, scene.act, action)
        if until is None:
            await scene.run()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(scene.run(), until - loop.time())

    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        runner.run(main())
    if stream.dropped:
        raise RuntimeError(f"{stream.dropped} events were dropped")
    return stream.read()
