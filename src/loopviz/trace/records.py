"""Raw record codes: what the hot path appends to the buffer before the decoder names things.

A raw record is a tuple ``(code, seq, wall, *payload)``: ``seq`` numbers records (gaps = drops),
``wall`` is ``time.monotonic()``, converted to loop time by the decoder from CLOCK_BASE records.
Records hold only numbers, strings and code objects (never futures or frames), so buffering them
keeps nothing alive and costs the GC nothing.
"""

SPAWN = 0  # tid, parent_tid, name, coro_code, site_code, site_lasti
BEFORE_STEP = 1  # tid (only when something happened during the step; else STEP carries it)
STEP = 2  # started, tid, user_code, user_lasti, await_code, await_arg, yielded, before_sent
EXIT = 3  # tid, outcome, detail, started, before_sent
# BEFORE_IO: iteration, timeout, ready_len, timers_len, snapshot | None, ready_tasks | None.
# The snapshot comes at the start and after lost records: ((fd, mask), ...) and live task ids.
BEFORE_IO = 4
AFTER_IO = 5  # iteration, ready ((fd, mask), ...), timers_due, started
STALL = 6  # tid, duration, code, line
OUTPUT = 7  # tid, text
FD_WATCH = 8  # fd, mask
FD_UNWATCH = 9  # fd
FD_LABEL = 10  # fd, label
CLOCK = 11  # speed, paused, stepping (a control change, shown to users)
SCENE = 12  # kind, fields
CLOCK_BASE = 13  # v0, w0, rate: loop time = v0 + (wall - w0) * rate from here on
RENAME = 14  # tid, name: the name asyncio gave a task after its spawn was recorded (eager tasks)
HELD = 15  # where, ready_len, timers_len, next_timer | None, ready_tasks | None: the gate holds

# What a task yielded at the end of a step (the ``yielded`` payload).
YIELDED_NOTHING = -1  # a bare yield (sleep(0)): the task is ready again at once
YIELDED_FUTURE = -2  # a plain future; a Task is recorded as its task id (>= 0)
