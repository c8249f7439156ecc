"""Turns raw records into named events, on the consumer's side of the buffer.

The hot path records code objects and numbers; here they become ``tasks.py:14``, the source text
``await asyncio.sleep(0.25)``, ``sleep(0.25)`` or ``sock_recv fd 7``. The decoder also keeps the fd
map (so every ``before_io_wait`` lists all watched fds while the loop only records changes), task
names, fd labels, and counts records lost to a full buffer by the gaps in their sequence numbers.
"""

from __future__ import annotations

import linecache
import os
import selectors
from collections.abc import Callable, Iterable
from types import CodeType
from typing import Any

from loopviz.trace import events as E
from loopviz.trace import records as R
from loopviz.trace.describe import is_user_code
from loopviz.trace.events import Event

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
_IO_DIRECTION = {"sock_recv": "r", "sock_recv_into": "r", "sock_accept": "r",
                 "sock_sendall": "w", "sock_connect": "w"}


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
        self.on_drop: Callable[[], None] | None = None
        self._next_seq = 0
        self._lines: dict[tuple[CodeType, int], tuple[str, str, str]] = {}
        self._handlers: dict[int, Callable[[tuple[Any, ...]], dict[str, Any]]] = {
            R.SPAWN: self._spawn,
            R.BEFORE_STEP: self._before_step,
            R.AFTER_STEP: self._after_step,
            R.EXIT: self._exit,
            R.BEFORE_IO: self._before_io,
            R.AFTER_IO: self._after_io,
            R.STALL: self._stall,
            R.OUTPUT: self._output,
            R.FD_WATCH: self._fd_watch,
            R.FD_UNWATCH: self._fd_unwatch,
            R.FD_LABEL: self._fd_label,
            R.CLOCK: self._clock,
        }
        self._kinds = {
            R.SPAWN: E.TASK_SPAWNED,
            R.BEFORE_STEP: E.BEFORE_TASK_STEP,
            R.AFTER_STEP: E.AFTER_TASK_STEP,
            R.EXIT: E.TASK_EXITED,
            R.BEFORE_IO: E.BEFORE_IO_WAIT,
            R.AFTER_IO: E.AFTER_IO_WAIT,
            R.STALL: E.LOOP_STALLED,
            R.OUTPUT: E.OUTPUT,
            R.FD_WATCH: E.FD_WATCH,
            R.FD_UNWATCH: E.FD_UNWATCH,
            R.FD_LABEL: E.FD_LABEL,
            R.CLOCK: E.CLOCK,
        }

    def decode(self, batch: Iterable[tuple[Any, ...]]) -> list[Event]:
        out: list[Event] = []
        for record in batch:
            code, seq, t = record[0], record[1], record[2]
            if seq > self._next_seq:
                missing = seq - self._next_seq
                self.dropped += missing
                out.append(Event(self._next_seq, t, E.EVENTS_DROPPED,
                                 {"count": missing, "total": self.dropped}))
                if self.on_drop is not None:
                    self.on_drop()
            if seq >= self._next_seq:
                self._next_seq = seq + 1
            if code == R.SCENE:
                out.append(Event(seq, t, record[3], record[4]))
            else:
                out.append(Event(seq, t, self._kinds[code], self._handlers[code](record)))
        return out

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

    # -- one handler per record code -------------------------------------------------------------

    def _spawn(self, r: tuple[Any, ...]) -> dict[str, Any]:
        _, _, _, task_id, parent, name, coro_code, site_code, site_line = r
        self.task_names[task_id] = name
        site = self.place(site_code, site_line)
        return {
            "task": task_id,
            "name": name,
            "coro": coro_code.co_qualname if coro_code is not None else None,
            # False for machinery (asyncio's shutdown tasks, loopviz's runner): views may hide it.
            "user": coro_code is None or is_user_code(coro_code),
            "parent": parent,
            "parent_name": self.task_name(parent),
            "site": site["line"],
            "site_source": site["source"],
        }

    def _before_step(self, r: tuple[Any, ...]) -> dict[str, Any]:
        return {"task": r[3], "name": self.task_name(r[3])}

    def _after_step(self, r: tuple[Any, ...]) -> dict[str, Any]:
        _, _, _, task_id, user_code, user_line, await_code, await_arg, yielded, duration = r
        fields: dict[str, Any] = {"task": task_id, "name": self.task_name(task_id)}
        if yielded is None:  # the step raised: the task is finished
            fields.update(done=True, awaits=None, await_kind=None, fd=None,
                          line=None, path=None, source=None)
        else:
            fields["done"] = False
            fields.update(self._awaiting(await_code, await_arg, yielded))
            fields.update(self.place(user_code, user_line))
        fields["duration"] = round(duration, 7)
        return fields

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
                what = f"sleep({arg:g})" if isinstance(arg, int | float) else "sleep"
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
        if fd is not None:
            fields["direction"] = _IO_DIRECTION.get(
                code.co_qualname.rsplit(".", 1)[-1] if code else "", None
            )
        return fields

    def _exit(self, r: tuple[Any, ...]) -> dict[str, Any]:
        return {"task": r[3], "name": self.task_name(r[3]), "outcome": r[4], "detail": r[5]}

    def _before_io(self, r: tuple[Any, ...]) -> dict[str, Any]:
        _, _, _, iteration, timeout, ready_len, timers_len, snapshot = r
        if snapshot is not None:
            self.fds = dict(snapshot)
        return {
            "iteration": iteration,
            "timeout": None if timeout is None else round(timeout, 6),
            "fds": [self._fd_entry(fd, mask) for fd, mask in sorted(self.fds.items())],
            "ready": ready_len,
            "timers": timers_len,
        }

    def _after_io(self, r: tuple[Any, ...]) -> dict[str, Any]:
        _, _, _, iteration, ready, waited_wall, waited, due = r
        return {
            "iteration": iteration,
            "ready_fds": [self._fd_entry(fd, mask) for fd, mask in ready],
            "waited": round(waited, 6),
            "waited_wall": round(waited_wall, 6),
            "timers_due": due,
        }

    def _fd_entry(self, fd: int, mask: int) -> dict[str, Any]:
        return {"fd": fd, "events": interest(mask), "label": self.label(fd)}

    def _stall(self, r: tuple[Any, ...]) -> dict[str, Any]:
        _, _, _, task_id, duration, code, line = r
        return {"task": task_id, "name": self.task_name(task_id), "duration": round(duration, 6),
                **self.place(code, line)}

    def _output(self, r: tuple[Any, ...]) -> dict[str, Any]:
        return {"task": r[3], "name": self.task_name(r[3]), "text": r[4]}

    def _fd_watch(self, r: tuple[Any, ...]) -> dict[str, Any]:
        self.fds[r[3]] = r[4]
        return self._fd_entry(r[3], r[4])

    def _fd_unwatch(self, r: tuple[Any, ...]) -> dict[str, Any]:
        self.fds.pop(r[3], None)
        return {"fd": r[3], "label": self.label(r[3])}

    def _fd_label(self, r: tuple[Any, ...]) -> dict[str, Any]:
        self.labels[r[3]] = r[4]
        return {"fd": r[3], "label": r[4]}

    def _clock(self, r: tuple[Any, ...]) -> dict[str, Any]:
        return {"speed": r[3], "paused": r[4], "stepping": r[5]}
