"""Turns raw records into named events, on the consumer's side of the buffer.

The hot path records code objects and numbers; here they become ``tasks.py:14``, the source text
``await asyncio.sleep(0.25)``, ``sleep(0.25)`` or ``sock_recv fd 7``. The decoder also keeps the fd
map (so every ``before_io_wait`` lists all watched fds while the loop only records changes), task
names, fd labels, and counts records lost to a full buffer by the gaps in their sequence numbers.

Raw stamps are wall-clock (``time.monotonic``); CLOCK_BASE records say how wall time maps to
loop time from then on. One raw STEP record becomes ``before_task_step`` + ``after_task_step``,
so events get their own ``seq``, numbered here.
"""

from __future__ import annotations

import linecache
import os
import selectors
from collections.abc import Callable, Iterable
from types import CodeType
from typing import Any

from loopviz import events as E
from loopviz.events import Event
from loopviz.trace import records as R
from loopviz.trace.describe import is_user_code, line_of
from loopviz.trace.fd_names import fd_name

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE

#: How each library call a task can wait in reads in the events, and what kind of wait it is.
_AWAIT_KIND = {
    "sleep": "sleep",
    "sock_recv": "io",
    "sock_recv_into": "io",
    "sock_sendall": "io",
    "sock_connect": "io",
    "sock_accept": "io",
    "Queue.get": "queue",
    "Queue.put": "queue",
    "Queue.join": "queue",
    "Lock.acquire": "lock",
    "Semaphore.acquire": "lock",
    "Condition.wait": "lock",
    "Event.wait": "event",
}
_IO_DIRECTION = {
    "sock_recv": "r",
    "sock_recv_into": "r",
    "sock_accept": "r",
    "sock_sendall": "w",
    "sock_connect": "w",
}


def interest(mask: int) -> str:
    """``r``, ``w`` or ``rw`` for a selector event mask."""
    return ("r" if mask & _READ else "") + ("w" if mask & _WRITE else "")


class Decoder:
    """Stateful raw-record -> Event translation for one traced loop's stream."""

    def __init__(self) -> None:
        self.task_names: dict[int, str] = {}
        self.fds: dict[int, int] = {}
        self.labels: dict[int, str] = {}
        self.dropped = 0
        self._named: set[int] = set()
        self.on_drop: Callable[[], None] | None = None
        self._next_raw = 0
        self._seq = 0
        self._last_t = 0.0
        #: Clock bases ``(v0, w0, rate)`` in the order they took effect (w0 increasing): each
        #: stamp is converted with the base in force when it was taken, not when it is decoded.
        #: A stamp older than every known base (the first ones were dropped) extrapolates from
        #: the earliest one known.
        self._bases: list[tuple[float, float, float]] = []
        self._lines: dict[tuple[CodeType, int], tuple[str, str, str]] = {}
        self._handlers: dict[int, Callable[[tuple[Any, ...], float], None]] = {
            R.SPAWN: self._spawn,
            R.BEFORE_STEP: self._before_step,
            R.STEP: self._step,
            R.EXIT: self._exit,
            R.BEFORE_IO: self._before_io,
            R.AFTER_IO: self._after_io,
            R.STALL: self._stall,
            R.OUTPUT: self._output,
            R.FD_WATCH: self._fd_watch,
            R.FD_UNWATCH: self._fd_unwatch,
            R.FD_LABEL: self._fd_label,
            R.CLOCK: self._clock,
            R.SCENE: self._scene,
            R.CLOCK_BASE: self._clock_base,
            R.RENAME: self._rename,
            R.HELD: self._held,
        }
        self._out: list[Event] = []

    def decode(self, batch: Iterable[tuple[Any, ...]]) -> list[Event]:
        self._out = out = []
        handlers = self._handlers
        for record in batch:
            raw_seq = record[1]
            if raw_seq > self._next_raw:
                missing = raw_seq - self._next_raw
                self.dropped += missing
                self._emit(
                    self._last_t, E.EVENTS_DROPPED, {"count": missing, "total": self.dropped}
                )
                if self.on_drop is not None:
                    self.on_drop()
            if raw_seq >= self._next_raw:
                self._next_raw = raw_seq + 1
            handlers[record[0]](record, self.loop_time(record[2]))
        return out

    def loop_time(self, wall: float) -> float:
        """Loop time of a raw wall stamp, by the clock base in force when it was taken."""
        bases = self._bases
        if not bases:
            return 0.0
        i = len(bases) - 1
        while i > 0 and bases[i][1] > wall:
            i -= 1
        v0, w0, rate = bases[i]
        return v0 + (wall - w0) * rate

    def set_clock_base(self, base: tuple[float, float, float]) -> None:
        """Adopt the clock's current base, after records that carried it were lost."""
        self._add_base(base)

    def _add_base(self, base: tuple[float, float, float]) -> None:
        bases = self._bases
        if bases and base[1] < bases[-1][1]:  # older than what we know (a late record): keep order
            bases.append(base)
            bases.sort(key=lambda b: b[1])
        else:
            bases.append(base)
        if len(bases) > 64:
            del bases[:-32]

    def step_running(self, task_id: int, started: float, now: float) -> list[Event]:
        """``step_running``: the step of ``task_id`` begun at wall time ``started`` still holds
        the loop at ``now``. Not a record: the consumer looks, as no record says it yet."""
        self._out = out = []
        self._emit(
            self.loop_time(now),
            E.STEP_RUNNING,
            {
                "task": task_id,
                "name": self.task_name(task_id),
                "since": round(self.loop_time(started), 6),
                "wall": round(now - started, 6),
            },
        )
        return out

    def _emit(self, t: float, kind: str, fields: dict[str, Any]) -> None:
        self._out.append(Event(self._seq, t, kind, fields))
        self._seq += 1
        self._last_t = t

    # -- names and places ------------------------------------------------------------------------

    def task_name(self, task_id: int | None) -> str | None:
        if task_id is None:
            return None
        return self.task_names.get(task_id, f"task {task_id}")

    def label(self, fd: int) -> str:
        return self.labels.get(fd, f"fd {fd}")

    def place(self, code: CodeType | None, line: int) -> dict[str, Any]:
        """``line`` (``tasks.py:14``), ``path`` and ``source`` of a code location."""
        if code is None:
            return {"line": None, "path": None, "source": None}
        key = (code, line)
        known = self._lines.get(key)
        if known is None:
            path = code.co_filename
            source = linecache.getline(path, line).strip() if line else ""
            known = (f"{os.path.basename(path)}:{line}", path, source)
            self._lines[key] = known
        return {"line": known[0], "path": known[1], "source": known[2]}

    # -- one handler per record code: (record, loop time) -> events --------------------------------

    def _spawn(self, r: tuple[Any, ...], t: float) -> None:
        _, _, _, task_id, parent, name, coro_code, site_code, site_lasti = r
        self.task_names[task_id] = name
        site = self.place(site_code, line_of(site_code, site_lasti))
        self._emit(
            t,
            E.TASK_SPAWNED,
            {
                "task": task_id,
                "name": name,
                "coro": coro_code.co_qualname if coro_code is not None else None,
                # False for machinery (asyncio's shutdown tasks, loopviz's runner): may be hidden.
                "user": coro_code is None or is_user_code(coro_code),
                "parent": parent,
                "parent_name": self.task_name(parent),
                "site": site["line"],
                "site_source": site["source"],
            },
        )

    def _rename(self, r: tuple[Any, ...], t: float) -> None:
        _, _, _, task_id, name = r
        self.task_names[task_id] = name
        self._emit(t, E.TASK_RENAMED, {"task": task_id, "name": name})

    def _before_step(self, r: tuple[Any, ...], t: float) -> None:
        self._emit(t, E.BEFORE_TASK_STEP, {"task": r[3], "name": self.task_name(r[3])})

    def _step(self, r: tuple[Any, ...], t: float) -> None:
        _, _, _, started, task_id, code, lasti, await_code, await_arg, yielded, before_sent = r
        if not before_sent:
            self._before_step((None, None, None, task_id), self.loop_time(started))
        fields: dict[str, Any] = {"task": task_id, "name": self.task_name(task_id), "done": False}
        fields.update(self._awaiting(await_code, await_arg, yielded))
        fields.update(self.place(code, line_of(code, lasti)))
        fields["duration"] = round(r[2] - started, 7)
        self._emit(self.loop_time(r[2]), E.AFTER_TASK_STEP, fields)

    def _exit(self, r: tuple[Any, ...], t: float) -> None:
        _, _, ended, task_id, outcome, detail, started, before_sent = r
        name = self.task_name(task_id)
        if not before_sent:
            self._before_step((None, None, None, task_id), self.loop_time(started))
        self._emit(
            t,
            E.AFTER_TASK_STEP,
            {
                "task": task_id,
                "name": name,
                "done": True,
                "awaits": None,
                "await_kind": None,
                "fd": None,
                "line": None,
                "path": None,
                "source": None,
                "duration": round(ended - started, 7),
            },
        )
        self._emit(
            t, E.TASK_EXITED, {"task": task_id, "name": name, "outcome": outcome, "detail": detail}
        )

    def _awaiting(self, code: CodeType | None, arg: Any, yielded: int) -> dict[str, Any]:
        fd = None
        if yielded >= 0:
            what, kind = f"task {self.task_name(yielded)}", "task"
        elif code is not None:
            name = code.co_qualname
            if name.startswith("BaseSelectorEventLoop."):
                name = name.removeprefix("BaseSelectorEventLoop.")
            kind = _AWAIT_KIND.get(name, "call")
            if name == "sleep":
                what = f"sleep({arg:.3g})" if isinstance(arg, int | float) else "sleep"
                if arg == 0:
                    kind = "yield"  # sleep(0) only yields: the task is ready again at once
            elif kind == "io" and isinstance(arg, int):
                fd = arg
                what = f"{name} {self.label(arg)}"
            else:
                what = name
        elif yielded == R.YIELDED_NOTHING:
            what, kind = "yield", "yield"
        else:
            what, kind = "future", "future"
        fields: dict[str, Any] = {"awaits": what, "await_kind": kind, "fd": fd}
        if fd is not None and code is not None:
            fields["direction"] = _IO_DIRECTION.get(code.co_qualname.rsplit(".", 1)[-1])
        return fields

    def _before_io(self, r: tuple[Any, ...], t: float) -> None:
        _, _, _, iteration, timeout, ready_len, timers_len, snapshot, ready_tasks = r
        live_tasks = None
        if snapshot is not None:
            fds, live = snapshot
            self.fds = dict(fds)
            live_tasks = sorted(live)
        self._emit(
            t,
            E.BEFORE_IO_WAIT,
            {
                "iteration": iteration,
                "timeout": None if timeout is None else round(timeout, 6),
                "fds": [self._fd_entry(fd, mask) for fd, mask in sorted(self.fds.items())],
                "ready": ready_len,
                "ready_tasks": None if ready_tasks is None else list(ready_tasks),
                "timers": timers_len,
                "live_tasks": live_tasks,
            },
        )

    def _after_io(self, r: tuple[Any, ...], t: float) -> None:
        _, _, ended, iteration, ready, due, started = r
        self._emit(
            t,
            E.AFTER_IO_WAIT,
            {
                "iteration": iteration,
                "ready_fds": [self._fd_entry(fd, mask) for fd, mask in ready],
                "waited": round(t - self.loop_time(started), 6),
                "waited_wall": round(ended - started, 6),
                "timers_due": due,
            },
        )

    def _held(self, r: tuple[Any, ...], t: float) -> None:
        _, _, _, where, ready_len, timers_len, next_timer, ready_tasks = r
        self._emit(
            t,
            E.LOOP_HELD,
            {
                "at": where,
                "ready": ready_len,
                "ready_tasks": None if ready_tasks is None else list(ready_tasks),
                "timers": timers_len,
                "next_timer": None if next_timer is None else round(next_timer, 6),
            },
        )

    def _fd_entry(self, fd: int, mask: int) -> dict[str, Any]:
        return {"fd": fd, "events": interest(mask), "label": self.label(fd)}

    def _stall(self, r: tuple[Any, ...], t: float) -> None:
        _, _, _, task_id, duration, code, line = r
        self._emit(
            t,
            E.LOOP_STALLED,
            {
                "task": task_id,
                "name": self.task_name(task_id),
                "duration": round(duration, 6),
                **self.place(code, line),
            },
        )

    def _output(self, r: tuple[Any, ...], t: float) -> None:
        fields = {"task": r[3], "name": self.task_name(r[3]), "text": r[4]}
        if len(r) > 5:  # printed by a scene's own thread
            fields["thread"] = r[5]
        self._emit(t, E.OUTPUT, fields)

    def _fd_watch(self, r: tuple[Any, ...], t: float) -> None:
        fd = r[3]
        if fd not in self.labels:  # named from what it is (``fd_names``)
            named = fd_name(fd)
            if named is not None:
                self.labels[fd] = named
                self._named.add(fd)
        self.fds[fd] = r[4]
        self._emit(t, E.FD_WATCH, self._fd_entry(fd, r[4]))

    def _fd_unwatch(self, r: tuple[Any, ...], t: float) -> None:
        fd = r[3]
        self.fds.pop(fd, None)
        self._emit(t, E.FD_UNWATCH, {"fd": fd, "label": self.label(fd)})
        if fd in self._named:  # the number may name another file next
            self._named.discard(fd)
            self.labels.pop(fd, None)

    def _fd_label(self, r: tuple[Any, ...], t: float) -> None:
        self._named.discard(r[3])
        self.labels[r[3]] = r[4]
        self._emit(t, E.FD_LABEL, {"fd": r[3], "label": r[4]})

    def _clock(self, r: tuple[Any, ...], t: float) -> None:
        self._emit(t, E.CLOCK, {"speed": r[3], "paused": r[4], "stepping": r[5]})

    def _scene(self, r: tuple[Any, ...], t: float) -> None:
        self._emit(t, r[3], dict(r[4]))

    def _clock_base(self, r: tuple[Any, ...], t: float) -> None:
        self._add_base((r[3], r[4], r[5]))  # internal: shapes loop time, not itself an event
