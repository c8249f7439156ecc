"""The narration line: one plain sentence about the last thing the loop did.

"print_numbers awaited sleep(0.25) and gave control back; the loop runs print_alphabet next."
The end of that sentence is only known one event later, so when a step ends the narrator says what
is already true ("... and gave control back.") and completes that same sentence in place when the
next step begins or the loop goes to sleep in select. At every moment the line is true of the
events seen so far, and a stepping learner never reads a guess.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from loopviz import events as E
from loopviz.events import Event
from loopviz.models.loop_state import LoopState, loop_time
from loopviz.models.tasks import yields_at_once

DEFAULT_HISTORY = 5

_CALL = re.compile(r"([A-Za-z_][\w.]*)\(")


def seconds(value: float) -> str:
    """A duration as a person says it: ``0.25 s``, ``13 s``, ``13 ms``."""
    if value >= 10:
        return f"{value:.0f} s"
    if value >= 0.1:
        return f"{value:.2g} s"
    if value >= 0.001:
        return f"{value * 1000:.2g} ms"
    return "less than a millisecond"


def call_of(source: str | None) -> str | None:
    """The call a source line makes, arguments elided: ``time.sleep(...)``."""
    if not source:
        return None
    code = source.split("#", 1)[0].strip()
    found = _CALL.search(code)
    return f"{found.group(1)}(...)" if found else code or None


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@dataclass(frozen=True, slots=True)
class Sentence:
    t: float
    text: str


@dataclass
class Narration:
    """The last few sentences about what the loop did, newest last.

    Machinery tasks (asyncio's shutdown tasks, loopviz's runner) are left out unless
    ``machinery`` is set, as the tasks panel hides them by default.
    """

    history_size: int = DEFAULT_HISTORY
    machinery: bool = False
    history: deque[Sentence] = field(default_factory=deque)
    #: Clock speed and stall lengths, for "blocked the loop for 0.25 s".
    loop: LoopState = field(default_factory=LoopState)
    #: The task whose step the newest sentence ends, while it waits for what the loop does next.
    pending: str | None = None
    _machinery_tasks: set[int] = field(default_factory=set, init=False, repr=False)
    #: The queue scene's requests by message id: (purpose, phone, code), and its senders up.
    _requests: dict[int, tuple[str, str, str]] = field(default_factory=dict, init=False, repr=False)
    _senders_up: set[int] = field(default_factory=set, init=False, repr=False)
    #: Shown tasks not finished yet: none left means the scene is over (until it starts again).
    _live_tasks: set[int] = field(default_factory=set, init=False, repr=False)
    #: Loop time the select in progress began sleeping, if it sleeps (not a mere poll).
    _select_sleeps_since: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.history = deque(self.history, maxlen=self.history_size)

    def apply(self, event: Event) -> None:
        self.loop.apply(event)
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event, loop_time(event))

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    @property
    def sentence(self) -> str:
        """The newest sentence, or an empty string before the loop did anything."""
        return self.history[-1].text if self.history else ""

    @property
    def sentences(self) -> list[str]:
        return [entry.text for entry in self.history]

    # -- saying things -----------------------------------------------------------------------

    def say(self, t: float, text: str, *, pending: str | None = None) -> None:
        self.history.append(Sentence(t, text))
        self.pending = pending

    def complete(self, ending: str) -> None:
        """End the pending sentence (it is the newest one) with what the loop did next."""
        last = self.history[-1]
        self.history[-1] = Sentence(last.t, last.text.removesuffix(".") + ending)
        self.pending = None

    def _shown(self, event: Event) -> bool:
        return self.machinery or event.get("task") not in self._machinery_tasks

    # -- handlers ----------------------------------------------------------------------------

    def _task_spawned(self, event: Event, t: float) -> None:
        if not event.get("user", True):
            self._machinery_tasks.add(event["task"])
            if not self.machinery:
                return
        self._live_tasks.add(event["task"])
        name, parent, site = event.get("name"), event.get("parent_name"), event.get("site")
        if event.get("parent") in self._machinery_tasks:
            parent = None  # loopviz's own runner started it: not part of the lesson
        where = f" at {site}" if site else ""
        who = f"{parent} created {name}{where}" if parent else f"{name} was created{where}"
        self.say(t, f"{who}; it waits in the run queue for its first turn.")

    def _before_task_step(self, event: Event, t: float) -> None:
        if self.pending is None:
            return
        name = event.get("name") or f"task {event['task']}"
        runs = "runs it again" if name == self.pending else f"runs {name}"
        self.complete(f"; the loop {runs} next.")

    def _after_task_step(self, event: Event, t: float) -> None:
        if event.get("done") or not self._shown(event):
            return
        name = event.get("name") or f"task {event['task']}"
        awaits, kind = event.get("awaits"), event.get("await_kind")
        if kind == "yield":
            text = f"{name} yielded and gave control back."
        else:
            text = f"{name} awaited {awaits} and gave control back."
        if yields_at_once(awaits, kind):
            text = text.removesuffix(".") + ", staying runnable."
        self.say(t, text, pending=name)

    def _loop_stalled(self, event: Event, t: float) -> None:
        stall = self.loop.last_stall
        name = event.get("name") or ("a callback" if event.get("task") is None else "a task")
        took = seconds(stall.loop_duration) if stall is not None else "a while"
        line, call = event.get("line"), call_of(event.get("source"))
        where = f" at {line}" if line else ""
        what = f" ({call})" if call else ""
        text = f"{name} blocked the loop for {took}{where}{what}: nothing else could run."
        if self.pending == name:
            self.history.pop()  # the stall is the story of that step; "next" still follows
            self.say(t, text, pending=name)
        else:
            self.say(t, text)

    def _before_io_wait(self, event: Event, t: float) -> None:
        live = event.get("live_tasks")
        if live is not None:  # the start, or after lost events: the loop's own list
            self._live_tasks = {
                task for task in live if self.machinery or task not in self._machinery_tasks
            }
        sleeps = event.get("ready", 0) == 0 and event.get("timeout") != 0
        self._select_sleeps_since = t if sleeps else None
        if not sleeps:
            return  # a poll between callbacks: the loop goes on running ready work
        if self.pending is not None:
            self.complete("; nothing else is runnable.")
        self.say(t, self._select_sentence(event))

    def _select_sentence(self, event: Event) -> str:
        timeout, timers = event.get("timeout"), event.get("timers", 0)
        if not self._live_tasks and timeout is not None and not self.machinery:
            # What the loop waits for is loopviz's own timer (the dashboard's repeat).
            return f"the scene's tasks have all finished; it starts again in {seconds(timeout)}."
        labels = [entry.get("label") or f"fd {entry['fd']}" for entry in event.get("fds") or ()]
        io = f"I/O on {', '.join(labels)}" if labels else ""
        if timeout is None:
            wakes = f"; only {io} can wake it" if io else ", and nothing can wake it"
            return f"the loop waits in select with no timeout: nothing is runnable{wakes}."
        if timers and not io:
            return (
                f"the loop waits in select for {seconds(timeout)}: nothing is runnable, "
                "the next timer is due then."
            )
        if timers:
            return (
                f"the loop waits in select for {seconds(timeout)}: nothing is runnable; "
                f"{io} or the next timer, due then, wakes it."
            )
        return f"the loop waits in select for {seconds(timeout)}: nothing is runnable."

    def _after_io_wait(self, event: Event, t: float) -> None:
        started = self._select_sleeps_since
        if started is None:
            return
        self._select_sleeps_since = None
        waited = seconds(t - started)  # loop time, also when a virtual clock jumped
        ready = [
            f"{entry.get('label') or 'fd ' + str(entry['fd'])} is {_READINESS[entry['events']]}"
            for entry in event.get("ready_fds") or ()
            if entry.get("events") in _READINESS
        ]
        due = event.get("timers_due", 0)
        if due:
            ready.append(f"{plural(due, 'timer')} {'is' if due == 1 else 'are'} due")
        if ready:
            self.say(t, f"select returned after {waited}: {', '.join(ready)}.")

    def _task_exited(self, event: Event, t: float) -> None:
        task = event.get("task")
        shown = self._shown(event)
        self._machinery_tasks.discard(task)
        self._live_tasks.discard(task)
        if not shown:
            return
        name = event.get("name") or f"task {task}"
        outcome, detail = event.get("outcome"), event.get("detail")
        if outcome == "failed":
            text = f"{name} failed: {detail}." if detail else f"{name} failed."
        elif outcome == "cancelled":
            text = f"{name} was cancelled."
        else:
            text = f"{name} finished."
        self.say(t, text)

    def _events_dropped(self, event: Event, t: float) -> None:
        count = event.get("count", 0)
        self.say(t, f"{plural(count, 'event')} lost: the viewer fell behind the loop.")

    # -- the queue scene's story ---------------------------------------------------------------

    def note(self, t: float, text: str) -> None:
        """A sentence about the scene rather than the loop: it goes before a sentence still
        waiting to say which task the loop runs next, which stays the newest."""
        if self.pending is None:
            self.say(t, text)
            return
        waiting = self.history.pop()
        self.history.append(Sentence(t, text))
        self.history.append(waiting)

    def _request(self, msg: object) -> str:
        purpose, phone, code = self._requests.get(int(msg), ("request", "", ""))  # type: ignore[call-overload]
        to = f" for {phone}" if phone else ""
        return f"request #{msg} ({purpose}{to}, code {code})" if code else f"request #{msg}"

    def _queue_published(self, event: Event, t: float) -> None:
        msg = event.get("msg")
        if msg is None:
            return
        if len(self._requests) >= REQUESTS_KEPT:
            self._requests.pop(next(iter(self._requests)))
        self._requests[int(msg)] = (
            str(event.get("purpose") or "request"),
            str(event.get("phone") or ""),
            str(event.get("code") or ""),
        )
        if not self._senders_up:  # the lesson: it waits, it is not lost
            self.note(t, f"{self._request(msg)} waits in the queue: no SMS sender is up.")

    def _queue_delivered(self, event: Event, t: float) -> None:
        again = " again" if event.get("redelivered") else ""
        if event.get("ack") == "auto":
            after = "auto ack: the broker deletes it now, done or not"
        else:
            after = "unacked until the sender acks it"
        self.note(
            t,
            f"SMS sender #{event.get('consumer')} took {self._request(event.get('msg'))}{again}: "
            f"{after}.",
        )

    def _queue_acked(self, event: Event, t: float) -> None:
        self.note(
            t,
            f"SMS sender #{event.get('consumer')} acked request #{event.get('msg')}: the SMS was "
            "sent, the broker deletes it.",
        )

    def _consumer_up(self, event: Event, t: float) -> None:
        self._senders_up.add(event.get("consumer"))  # type: ignore[arg-type]
        if event.kind == "consumer.up":
            self.note(t, f"SMS sender #{event.get('consumer')} is back: it takes what waits.")

    def _consumer_down(self, event: Event, t: float) -> None:
        self._senders_up.discard(event.get("consumer"))  # type: ignore[arg-type]
        if event.kind == "consumer.removed":
            return
        held = event.get("held") or []
        holding = f", holding {', '.join(f'#{m}' for m in held)}" if held else ""
        self.note(t, f"SMS sender #{event.get('consumer')} went down{holding}.")

    def _queue_redelivered(self, event: Event, t: float) -> None:
        self.note(
            t,
            f"{self._request(event.get('msg'))} was never acked: the broker puts it back in the "
            "queue (redelivered), so another sender sends it.",
        )

    def _queue_lost(self, event: Event, t: float) -> None:
        self.note(
            t,
            f"{self._request(event.get('msg'))} is lost: auto ack removed it on delivery, "
            "and its sender died before sending.",
        )

    def _request_failed(self, event: Event, t: float) -> None:
        self.note(t, f"{self._request(event.get('msg'))} failed: {event.get('reason')}.")

    def _scene_failed(self, event: Event, t: float) -> None:
        scene = event.get("scene") or "a scene"
        self.say(t, f"the {scene} scene failed: {event.get('error')}.")


#: Requests whose purpose, phone and code are remembered for the sentences.
REQUESTS_KEPT = 1000

_READINESS = {"r": "readable", "w": "writable", "rw": "readable and writable"}

_HANDLERS: dict[str, Callable[[Narration, Event, float], None]] = {
    E.TASK_SPAWNED: Narration._task_spawned,
    E.BEFORE_TASK_STEP: Narration._before_task_step,
    E.AFTER_TASK_STEP: Narration._after_task_step,
    E.LOOP_STALLED: Narration._loop_stalled,
    E.BEFORE_IO_WAIT: Narration._before_io_wait,
    E.AFTER_IO_WAIT: Narration._after_io_wait,
    E.TASK_EXITED: Narration._task_exited,
    E.EVENTS_DROPPED: Narration._events_dropped,
    "scene.failed": Narration._scene_failed,
    "queue.published": Narration._queue_published,
    "consumer.added": Narration._consumer_up,
    "consumer.up": Narration._consumer_up,
    "consumer.down": Narration._consumer_down,
    "consumer.removed": Narration._consumer_down,
    "queue.delivered": Narration._queue_delivered,
    "queue.acked": Narration._queue_acked,
    "queue.redelivered": Narration._queue_redelivered,
    "queue.lost": Narration._queue_lost,
    "queue.request_failed": Narration._request_failed,
}
