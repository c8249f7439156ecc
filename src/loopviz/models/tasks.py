"""The tasks panel's state: every task, what it does now, and where its time went.

Times are loop seconds from event timestamps (``busy_time``, ``wait_time``), so they agree with the
timeline and the loop clock at any speed; ``busy_wall`` adds up the steps' measured wall seconds.
A task the stream never introduced (events dropped, or a replay that starts mid-run) appears at
its first event, named by it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from loopviz import events as E
from loopviz.events import Event
from loopviz.models.loop_state import loop_time

RUNNING = "running"
READY = "ready"
WAITING = "waiting"
DONE = "done"
CANCELLED = "cancelled"
FAILED = "failed"

FINISHED = frozenset({DONE, CANCELLED, FAILED})
_OUTCOMES = {"returned": DONE, "failed": FAILED, "cancelled": CANCELLED}


def yields_at_once(awaits: str | None, await_kind: str | None) -> bool:
    """True when the task's await puts it straight back in the ready queue.

    A bare ``yield`` does, and so does ``sleep(0)``: it is a bare yield inside ``asyncio.sleep``.
    """
    return await_kind == "yield" or (await_kind == "sleep" and awaits == "sleep(0)")


@dataclass
class TaskInfo:
    """One task as the tasks panel shows it."""

    id: int
    name: str
    coro: str | None = None
    #: False for machinery (asyncio's shutdown tasks, loopviz's runner); views hide it by default.
    #: A task the stream never introduced counts as the user's: better shown than lost.
    user: bool = True
    parent: int | None = None
    parent_name: str | None = None
    #: Where it was created: ``tasks.py:69`` and that line's text.
    site: str | None = None
    site_source: str | None = None
    state: str = READY
    #: What it awaits: ``sleep(0.25)``, ``sock_recv client#1``, ``Queue.get``...
    awaits: str | None = None
    await_kind: str | None = None
    fd: int | None = None
    direction: str | None = None
    #: Where it is suspended: ``tasks.py:41``, the file and the line's text.
    line: str | None = None
    path: str | None = None
    source: str | None = None
    steps: int = 0
    #: Steps that held the loop past the stall threshold (a blocking call inside).
    stalls: int = 0
    busy_time: float = 0.0
    busy_wall: float = 0.0
    wait_time: float = 0.0
    first_seen: float = 0.0
    #: Loop time of the last state change; the open interval is not yet in busy/wait time.
    since: float = 0.0
    finished_at: float | None = None
    outcome: str | None = None
    detail: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def busy_at(self, now: float) -> float:
        """Loop seconds it has run, counting a step still in progress up to ``now``."""
        return self.busy_time + (now - self.since if self.state == RUNNING else 0.0)

    def wait_at(self, now: float) -> float:
        """Loop seconds it has been suspended (ready or waiting), up to ``now``."""
        suspended = self.state in (READY, WAITING)
        return self.wait_time + (now - self.since if suspended else 0.0)

    def enter(self, state: str, t: float) -> None:
        """Change state at loop time ``t``, booking the time spent in the old one."""
        spent = max(0.0, t - self.since)
        if self.state == RUNNING:
            self.busy_time += spent
        elif self.state in (READY, WAITING):
            self.wait_time += spent
        self.state = state
        self.since = t

    def suspend_at(self, event: Event) -> None:
        """Take what it awaits and where from an ``after_task_step``."""
        self.awaits = event.get("awaits")
        self.await_kind = event.get("await_kind")
        self.fd = event.get("fd")
        self.direction = event.get("direction")
        self.line = event.get("line")
        self.path = event.get("path")
        self.source = event.get("source")

    def clear_await(self) -> None:
        """A finished task awaits nothing and is suspended nowhere."""
        self.awaits = self.await_kind = self.direction = None
        self.line = self.path = self.source = None
        self.fd = None


@dataclass
class TaskTable:
    """Every task of one traced loop, folded from its events.

    Finished tasks stay for ``keep_finished`` loop seconds (None keeps them all), so a learner
    sees them end, then they make room: 3 s, the dashboard's pause before a scene runs again,
    so one run's finished rows leave as the next run's appear instead of piling up (a scene's
    results stay pinned over the output).
    """

    keep_finished: float | None = 3.0
    tasks: dict[int, TaskInfo] = field(default_factory=dict)
    #: The task whose step is in progress. At most one runs; an eager task's first step runs
    #: inside its parent's, whose id waits in ``outer`` until the inner step ends.
    running: int | None = None
    outer: list[int] = field(default_factory=list)
    now: float = 0.0
    _expiry: deque[tuple[float, int]] = field(default_factory=deque, init=False, repr=False)

    def apply(self, event: Event) -> None:
        t = loop_time(event)
        if t > self.now:
            self.now = t
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event, t)
        if self._expiry:
            self.expire(self.now)

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    # -- reading -----------------------------------------------------------------------------

    @property
    def running_task(self) -> TaskInfo | None:
        return None if self.running is None else self.tasks.get(self.running)

    def rows(self, *, machinery: bool = False) -> list[TaskInfo]:
        """Tasks in the order they appeared; machinery only when asked for."""
        return [task for task in self.tasks.values() if machinery or task.user]

    def count(self, state: str) -> int:
        return sum(1 for task in self.tasks.values() if task.state == state)

    def expire(self, now: float) -> None:
        """Drop tasks finished more than ``keep_finished`` loop seconds before ``now``."""
        if self.keep_finished is None:
            return
        horizon = now - self.keep_finished
        while self._expiry and self._expiry[0][0] < horizon:
            _, task_id = self._expiry.popleft()
            task = self.tasks.get(task_id)
            if task is not None and task.finished:
                del self.tasks[task_id]

    # -- handlers ----------------------------------------------------------------------------

    def _task(self, event: Event, t: float) -> TaskInfo:
        """The event's task, created from the event itself if the stream never introduced it."""
        task_id = event["task"]
        task = self.tasks.get(task_id)
        name = event.get("name")
        if task is None:
            task = TaskInfo(task_id, name or f"task {task_id}", first_seen=t, since=t)
            self.tasks[task_id] = task
        elif name and name != task.name:
            task.name = name
        return task

    def _finish(self, task: TaskInfo, state: str, t: float) -> None:
        task.enter(state, t)
        if task.finished_at is None:
            task.finished_at = t
            self._expiry.append((t, task.id))
        self._step_ended(task)

    def _step_ended(self, task: TaskInfo) -> None:
        if self.running == task.id:
            self.running = self.outer.pop() if self.outer else None

    def _task_spawned(self, event: Event, t: float) -> None:
        task = self._task(event, t)
        task.coro = event.get("coro")
        task.user = bool(event.get("user", True))
        task.parent = event.get("parent")
        task.parent_name = event.get("parent_name")
        task.site = event.get("site")
        task.site_source = event.get("site_source")

    def _before_task_step(self, event: Event, t: float) -> None:
        task = self._task(event, t)
        previous = self.running_task
        if previous is not None and previous is not task:
            if task.steps == 0 and task.parent == previous.id:
                self.outer.append(previous.id)  # an eager task's first step, inside its parent's
            else:
                previous.enter(WAITING, t)  # its after_task_step was lost
        task.enter(RUNNING, t)
        task.steps += 1
        self.running = task.id

    def _after_task_step(self, event: Event, t: float) -> None:
        task = self._task(event, t)
        task.busy_wall += event.get("duration") or 0.0
        self._step_ended(task)
        if event.get("done"):
            task.clear_await()
            self._finish(task, DONE, t)  # task_exited follows with the outcome
            return
        task.suspend_at(event)
        ready = yields_at_once(task.awaits, task.await_kind)
        task.enter(READY if ready else WAITING, t)

    def _task_exited(self, event: Event, t: float) -> None:
        task = self._task(event, t)
        task.outcome = event.get("outcome")
        task.detail = event.get("detail")
        task.clear_await()
        self._finish(task, _OUTCOMES.get(task.outcome or "", DONE), t)

    def _before_io_wait(self, event: Event, t: float) -> None:
        """Tasks whose step or wake-up sits in the ready queue are ready: they run next. After
        lost events the loop also lists its live tasks: any other task has ended unseen."""
        live = event.get("live_tasks")
        if live is not None:
            alive = set(live)
            for task in list(self.tasks.values()):
                if not task.finished and task.id not in alive:
                    task.outcome = task.outcome or "ended (its exit event was lost)"
                    task.clear_await()
                    self._finish(task, DONE, t)
        queued = event.get("ready_tasks")
        if not queued:
            return
        for task_id in queued:
            task = self.tasks.get(task_id)
            if task is not None and task.state == WAITING:
                task.enter(READY, t)

    def _loop_stalled(self, event: Event, t: float) -> None:
        task_id = event.get("task")
        task = self.tasks.get(task_id) if task_id is not None else None
        if task is not None:  # None: a plain callback stalled, or the task is gone
            task.stalls += 1


_HANDLERS: dict[str, Callable[[TaskTable, Event, float], None]] = {
    E.TASK_SPAWNED: TaskTable._task_spawned,
    E.TASK_RENAMED: TaskTable._task,
    E.BEFORE_TASK_STEP: TaskTable._before_task_step,
    E.AFTER_TASK_STEP: TaskTable._after_task_step,
    E.TASK_EXITED: TaskTable._task_exited,
    E.LOOP_STALLED: TaskTable._loop_stalled,
    E.BEFORE_IO_WAIT: TaskTable._before_io_wait,
}
