"""QueueStats: the queue scene's numbers, folded from its events alone.

Every published message sits in exactly one bucket: ``ready`` (in the queue), ``unacked`` (held by
a consumer under manual ack), ``acked`` (the broker forgot it: acked, or delivered under auto ack)
or ``lost`` (auto-acked, and its consumer died before finishing it: it moves from acked to lost).
So ``published == acked + ready + unacked + lost`` after every event; the model also checks its
ready/unacked against the counts the broker attaches to each event and counts disagreements as
``anomalies`` (a dropped event shows up there).

Pure Python (no asyncio, no Textual). Times are rounded to the microsecond, as JSONL stores them,
so a model rebuilt from a recording equals (``==``) the one fed live. Rates are counted over a
sliding window of loop time that ends at the last event, so they too depend on events only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Bucket names of a message's state.
READY, UNACKED, ACKED, LOST = "ready", "unacked", "acked", "lost"


@dataclass
class ConsumerView:
    """What the UI shows for one consumer: up/down/leaving, and what it is doing."""

    id: int
    state: str = "up"  # "up" | "down" | "leaving"
    #: The message it is working on (sending the SMS), if any.
    working: int | None = None
    #: A message it finished whose ack is on its way to the broker.
    acking: int | None = None
    #: Messages delivered to it and not yet settled, in delivery order.
    held: list[int] = field(default_factory=list)
    processed: int = 0

    @property
    def activity(self) -> str:
        """One phrase: ``down``, ``idle``, ``working on #12``, ``acking #12``."""
        if self.state == "down":
            return "down"
        if self.working is not None:
            return f"working on #{self.working}"
        if self.acking is not None:
            return f"acking #{self.acking}"
        return "leaving" if self.state == "leaving" else "idle"


@dataclass(frozen=True)
class Request:
    """What a message asks for: the SMS to send."""

    purpose: str
    phone: str
    code: str


@dataclass
class QueueStats:
    """The queue scene's state and counters; feed it events with ``apply``."""

    #: Seconds of loop time the rates are counted over.
    window: float = 5.0
    #: Seconds of loop time of publish/deliver/ack history kept for sparklines.
    history: float = 30.0

    published: int = 0
    ready: int = 0
    unacked: int = 0
    acked: int = 0
    lost: int = 0
    #: Times a dying consumer's unacked message went back to ready (marked redelivered).
    redelivered: int = 0
    deliveries: int = 0
    #: Times a message's work finished (an SMS was sent), queued or direct.
    processed: int = 0
    #: Messages processed more than once (a duplicate SMS).
    duplicates: int = 0
    #: No-queue mode: requests handed straight to a sender, and requests that failed.
    direct_calls: int = 0
    failed_requests: int = 0
    #: The most messages ready or unacked at once so far: the bars' scale, so a backlog draining
    #: shows as the bar shrinking (not a scale shrinking with it).
    peak: int = 0

    mode: str = "manual"
    consumers: dict[int, ConsumerView] = field(default_factory=dict)
    #: Loop time of the first queue event and of the last one applied.
    started: float | None = None
    t: float = 0.0
    finished: bool = False
    #: Events that disagree with the message's state or the broker's counts; events dropped.
    anomalies: int = 0
    last_anomaly: str | None = None
    dropped: int = 0

    #: What each message still in the queue or in a sender's hands asks for (gone once acked
    #: or lost, so it holds no more than the backlog).
    requests: dict[int, Request] = field(default_factory=dict, repr=False)
    _state: dict[int, str] = field(default_factory=dict, repr=False)
    _published_at: dict[int, float] = field(default_factory=dict, repr=False)
    _ready_since: dict[int, float] = field(default_factory=dict, repr=False)
    _times_processed: dict[int, int] = field(default_factory=dict, repr=False)
    _publish_times: deque[float] = field(default_factory=deque, repr=False)
    _deliver_times: deque[float] = field(default_factory=deque, repr=False)
    _ack_times: deque[float] = field(default_factory=deque, repr=False)

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]], **options: Any) -> QueueStats:
        stats = cls(**options)
        for event in events:
            stats.apply(event)
        return stats

    # -- derived numbers ----------------------------------------------------------------------

    def held(self) -> list[tuple[int, Request, int]]:
        """The messages delivered and not done yet, with what each asks for and which consumer
        holds it, in delivery order per consumer."""
        return [
            (msg, self.requests.get(msg, Request("request", "", "")), view.id)
            for view in self.consumers.values()
            for msg in view.held
        ]

    def waiting(self) -> list[tuple[int, Request]]:
        """The ready messages, oldest first, with what each asks for."""
        ready = sorted(
            (since, msg)
            for msg, since in self._ready_since.items()
            if self._state.get(msg) == READY
        )
        return [(msg, self.requests.get(msg, Request("request", "", ""))) for _, msg in ready]

    @property
    def balanced(self) -> bool:
        """Every published message is in exactly one bucket."""
        return self.published == self.acked + self.ready + self.unacked + self.lost

    @property
    def consumers_up(self) -> int:
        return sum(1 for c in self.consumers.values() if c.state == "up")

    @property
    def publish_rate(self) -> float:
        return self.rate(self._publish_times)

    @property
    def deliver_rate(self) -> float:
        return self.rate(self._deliver_times)

    @property
    def ack_rate(self) -> float:
        return self.rate(self._ack_times)

    def rate(self, times: Iterable[float], now: float | None = None) -> float:
        """Events per second over the window ending at ``now`` (the last event by default);
        shorter at the start, so the first seconds are not under-reported."""
        end = self.t if now is None else now
        if self.started is None:
            return 0.0
        span = min(self.window, end - self.started)
        if span <= 0:
            return 0.0
        return sum(1 for t in times if end - self.window < t <= end) / span

    def oldest_ready_age(self, now: float | None = None) -> float | None:
        """How long the oldest ready message has waited since it was published."""
        if not self._ready_since:
            return None
        return (self.t if now is None else now) - min(self._ready_since.values())

    @property
    def drain_eta(self) -> float | None:
        """Seconds until ready reaches 0 at the current rates; None if it is not shrinking."""
        if self.ready == 0:
            return 0.0
        net = self.deliver_rate - self.publish_rate
        return self.ready / net if net > 0 else None

    def series(self, which: str, *, buckets: int, seconds: float = 1.0) -> list[int]:
        """Events per ``seconds``-long bucket (``publish``, ``deliver`` or ``ack``), oldest first,
        ending at the last event: what a sparkline draws."""
        times = {
            "publish": self._publish_times,
            "deliver": self._deliver_times,
            "ack": self._ack_times,
        }[which]
        end = self.t
        start = end - buckets * seconds
        counts = [0] * buckets
        for t in times:
            if start < t <= end:
                counts[min(buckets - 1, int((t - start) / seconds))] += 1
        return counts

    # -- folding --------------------------------------------------------------------------------

    def apply(self, event: Mapping[str, Any]) -> None:
        """Fold one event; events of other kinds and other scenes are ignored."""
        kind = event["kind"]
        if kind == "events_dropped":
            self.dropped += int(event["count"])
            return
        handler = _HANDLERS.get(kind)
        if handler is None or event.get("scene", "queue") != "queue":
            return
        self.t = round(float(event["t"]), 6)
        if self.started is None:
            self.started = self.t
        handler(self, event)
        self.peak = max(self.peak, self.ready, self.unacked)
        self._check_broker(event)
        self._forget_old(self.t - max(self.window, self.history))

    def _check_broker(self, event: Mapping[str, Any]) -> None:
        ready, unacked = event.get("ready"), event.get("unacked")
        if ready is None or unacked is None:
            return
        if (ready, unacked) != (self.ready, self.unacked):
            self._anomaly(
                f"seq {event.get('seq')}: broker has ready={ready} unacked={unacked}, "
                f"folded ready={self.ready} unacked={self.unacked}"
            )

    def _forget_old(self, cutoff: float) -> None:
        for times in (self._publish_times, self._deliver_times, self._ack_times):
            while times and times[0] <= cutoff:
                times.popleft()

    def _anomaly(self, what: str) -> None:
        self.anomalies += 1
        self.last_anomaly = what

    def _move(self, msg: int, expected: str, to: str, seq: int | None) -> None:
        """Move a message between buckets; an unexpected state is counted, then followed."""
        now = self._state.get(msg)
        if now != expected:
            self._anomaly(f"seq {seq}: message #{msg} is {now or 'unknown'}, expected {expected}")
        if now is not None:
            setattr(self, now, getattr(self, now) - 1)
        setattr(self, to, getattr(self, to) + 1)
        self._state[msg] = to
        if to == READY:
            self._ready_since[msg] = self._published_at.get(msg, self.t)
        else:
            self._ready_since.pop(msg, None)

    def _consumer(self, event: Mapping[str, Any]) -> ConsumerView:
        cid = int(event["consumer"])
        view = self.consumers.get(cid)
        if view is None:
            view = self.consumers[cid] = ConsumerView(cid)
        return view

    # -- one handler per event kind ---------------------------------------------------------

    def _on_started(self, event: Mapping[str, Any]) -> None:
        self.mode = str(event["ack"])

    def _on_mode(self, event: Mapping[str, Any]) -> None:
        self.mode = str(event["ack"])

    def _on_finished(self, event: Mapping[str, Any]) -> None:
        self.finished = True

    def _on_published(self, event: Mapping[str, Any]) -> None:
        msg = int(event["msg"])
        if msg in self._state:
            self._anomaly(f"seq {event.get('seq')}: message #{msg} published twice")
        self.published += 1
        self._published_at[msg] = self.t
        self._state[msg] = READY
        self.ready += 1
        self._ready_since[msg] = self.t
        self._publish_times.append(self.t)
        self.requests[msg] = Request(
            str(event.get("purpose") or "request"),
            str(event.get("phone") or ""),
            str(event.get("code") or ""),
        )

    def _on_delivered(self, event: Mapping[str, Any]) -> None:
        msg = int(event["msg"])
        to = ACKED if event["ack"] == "auto" else UNACKED
        self._move(msg, READY, to, event.get("seq"))
        self.deliveries += 1
        self._deliver_times.append(self.t)
        if to == ACKED:
            self._ack_times.append(self.t)
        self._consumer(event).held.append(msg)

    def _on_acked(self, event: Mapping[str, Any]) -> None:
        msg = int(event["msg"])
        self._move(msg, UNACKED, ACKED, event.get("seq"))
        self._ack_times.append(self.t)
        self.requests.pop(msg, None)
        view = self._consumer(event)
        _discard(view.held, msg)
        if view.acking == msg:
            view.acking = None

    def _on_redelivered(self, event: Mapping[str, Any]) -> None:
        self._move(int(event["msg"]), UNACKED, READY, event.get("seq"))
        self.redelivered += 1

    def _on_lost(self, event: Mapping[str, Any]) -> None:
        self._move(int(event["msg"]), ACKED, LOST, event.get("seq"))
        self.requests.pop(int(event["msg"]), None)

    def _on_working(self, event: Mapping[str, Any]) -> None:
        self._consumer(event).working = int(event["msg"])

    def _on_processed(self, event: Mapping[str, Any]) -> None:
        msg = int(event["msg"])
        self.processed += 1
        count = self._times_processed.get(msg, 0) + 1
        self._times_processed[msg] = count
        if count == 2:
            self.duplicates += 1
        view = self._consumer(event)
        view.processed += 1
        if view.working == msg:
            view.working = None
        if event.get("direct"):
            return
        if self._state.get(msg) == UNACKED:
            view.acking = msg  # manual ack: the ack is on its way
        else:
            _discard(view.held, msg)  # auto ack: done, nothing to send
            self.requests.pop(msg, None)

    def _on_called(self, event: Mapping[str, Any]) -> None:
        self.direct_calls += 1

    def _on_request_failed(self, event: Mapping[str, Any]) -> None:
        self.failed_requests += 1

    def _on_consumer_up(self, event: Mapping[str, Any]) -> None:
        view = self._consumer(event)
        view.state, view.working, view.acking, view.held = "up", None, None, []

    def _on_consumer_down(self, event: Mapping[str, Any]) -> None:
        view = self._consumer(event)
        view.state, view.working, view.acking, view.held = "down", None, None, []

    def _on_consumer_removing(self, event: Mapping[str, Any]) -> None:
        self._consumer(event).state = "leaving"

    def _on_consumer_removed(self, event: Mapping[str, Any]) -> None:
        self.consumers.pop(int(event["consumer"]), None)


def _discard(items: list[int], item: int) -> None:
    if item in items:
        items.remove(item)


_HANDLERS = {
    "queue.started": QueueStats._on_started,
    "queue.mode": QueueStats._on_mode,
    "queue.finished": QueueStats._on_finished,
    "queue.published": QueueStats._on_published,
    "queue.delivered": QueueStats._on_delivered,
    "queue.acked": QueueStats._on_acked,
    "queue.redelivered": QueueStats._on_redelivered,
    "queue.lost": QueueStats._on_lost,
    "queue.processed": QueueStats._on_processed,
    "queue.called": QueueStats._on_called,
    "queue.request_failed": QueueStats._on_request_failed,
    "queue.burst": lambda stats, event: None,
    "queue.ignored": lambda stats, event: None,
    "consumer.working": QueueStats._on_working,
    "consumer.added": QueueStats._on_consumer_up,
    "consumer.up": QueueStats._on_consumer_up,
    "consumer.down": QueueStats._on_consumer_down,
    "consumer.removing": QueueStats._on_consumer_removing,
    "consumer.removed": QueueStats._on_consumer_removed,
}
