"""Raw record codes: what the hot path appends to the buffer before the decoder names things.

A raw record is a tuple ``(code, seq, t, *payload)`` holding only numbers, strings and code objects
(never futures or frames), so buffering it keeps no live object alive and costs the GC nothing.
"""

SPAWN = 0  # tid, parent_tid, name, coro_code, site_code, site_line
BEFORE_STEP = 1  # tid
AFTER_STEP = 2  # tid, user_code, user_line, await_code, await_arg, yielded, duration
EXIT = 3  # tid, outcome, detail
BEFORE_IO = 4  # iteration, timeout, ready_len, timers_len, snapshot | None
AFTER_IO = 5  # iteration, ready ((fd, mask), ...), waited_wall, waited, timers_due
STALL = 6  # tid, duration, code, line
OUTPUT = 7  # tid, text
FD_WATCH = 8  # fd, mask
FD_UNWATCH = 9  # fd
FD_LABEL = 10  # fd, label
CLOCK = 11  # speed, paused, stepping
SCENE = 12  # kind, fields

# What a task yielded at the end of a step (the ``yielded`` payload).
YIELDED_NOTHING = -1  # a bare yield (sleep(0)): the task is ready again at once
YIELDED_FUTURE = -2  # a plain future; a Task is recorded as its task id (>= 0)
