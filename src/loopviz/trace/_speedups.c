/* loopviz.trace._speedups: the tracer's hot path in C (optional; proxy.py has the same logic in
 * Python and is used when this module is not built).
 *
 * The types:
 *   Ring       the preallocated record buffer; the hot records (a step's end and start, an fd
 *              watched or unwatched, a spawn, a plain exit) are stored as plain fields and
 *              become the tuples Python would write only when drained.
 *   Recorder   the per-loop state every task step touches (the sequence counter, the step in
 *              progress, the fast-path switch, the stall limit, the buffer's append). Tracer
 *              subclasses it, so Python reads and writes the same fields as attributes. The
 *              stall watchdog waits in its wait_for_stall(), without the GIL.
 *   CoroProxy  the base of TracedCoroutine. Its am_send slot is what the C asyncio.Task calls for
 *              every step (PyIter_Send), so a step costs no method lookup and no StopIteration.
 *              It describes the suspension (describe.suspension() in C) and records the common
 *              step end and exit itself; anything rarer calls the same Python methods the
 *              pure-Python proxy calls (Tracer.step_done, step_failed), so both write identical
 *              records.
 *   SpawnMethod  TracedEventLoop's create_task: wraps a new task's coroutine in the proxy and
 *              records the spawn (name, coroutine, the user's line that spawned it).
 *   PollWatch  stands in for a poll-like selector's epoll/poll object, recording each change
 *              of interest (register, modify, unregister) as the selector makes it.
 *
 * Frames: where a task stands and which line spawned it are read from frame objects through
 * the public API (PyFrame_GetLasti, PyFrame_GetBack...) on any Python. On CPython 3.11, 3.13
 * and 3.14 they are read in place from the interpreter's own frames (internal/pycore_frame.h,
 * compiled against the very headers of the running Python): a frame object costs an
 * allocation, a GC link and an audit hook call, several per task. The few places where the
 * versions' frames differ are the helpers under "frames in place" below. frame_access("public")
 * switches to the public path, which the tests compare with the in-place one.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <time.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#include <opcode.h>
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE
#define HAVE_FRAMES_IN_PLACE 1
#elif PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030F0000
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#if PY_VERSION_HEX >= 0x030E0000
#include "internal/pycore_interpframe.h"
#endif
#undef Py_BUILD_CORE
#define HAVE_FRAMES_IN_PLACE 1
#else
#define HAVE_FRAMES_IN_PLACE 0 /* 3.12 and anything newer than 3.14: the public API */
#endif

/* Read frames in place (3.11, 3.13, 3.14) rather than through frame objects; see
 * frame_access(). */
static int frames_in_place = HAVE_FRAMES_IN_PLACE;

/* Set once by configure(): shared with describe.py and records.py. */
static PyObject *library_calls = NULL; /* dict: library coroutine code -> argument name */
static PyObject *future_type = NULL;   /* asyncio.Future: a plain future needs no lookup */
static PyObject *argument_func = NULL; /* describe.argument(frame, name) */
static PyObject *step_code = NULL;     /* records.STEP */
static PyObject *yielded_nothing = NULL;
static PyObject *yielded_future = NULL;
static int yielded_nothing_value, yielded_future_value; /* the same, as C ints for the ring */
static PyObject *before_step_code = NULL; /* records.BEFORE_STEP */
static PyObject *exit_code = NULL;        /* records.EXIT */
static PyObject *fd_watch_code = NULL;    /* records.FD_WATCH */
static PyObject *fd_unwatch_code = NULL;  /* records.FD_UNWATCH */
static PyObject *current_task_func = NULL; /* asyncio.current_task */
static PyObject *cancel_pending_attr = NULL; /* the Task attribute: a cancel() is waiting */
static PyObject *current_tasks = NULL;     /* asyncio's {loop: running task} (from loop.py) */
static PyObject *running_loop_func = NULL; /* asyncio._get_running_loop */
static PyObject *str_returned, *str_cancelled, *str_empty, *str_get_coro;

static PyObject *str_send_nested, *str_task_factory_attr = NULL, *str_selector_attr = NULL;
static PyObject *str_gi_frame, *str_gi_yieldfrom, *str_gi_code;
static PyObject *str_cr_frame, *str_cr_await, *str_cr_code, *str_step_done, *str_step_failed,
    *str_describe, *str_coro_name, *str_throw, *str_throw_done;

static PyObject *is_user_code_func = NULL; /* describe.is_user_code(code) */
/* Set by configure_spawn() (loop.py): what create_task needs. */
static PyObject *spawn_code = NULL;        /* records.SPAWN */
static PyObject *base_create_task = NULL;  /* asyncio's create_task, which makes the Task */
static PyObject *naming_callers = NULL;    /* tuple: codes that name a task after creating it */
static PyObject *callback_entry = NULL;    /* Handle._run's code: where a callback's stack starts */
static PyObject *str_tracer, *str_name, *str_get_name, *str_create_other,
    *str_f_locals, *str_register, *str_modify, *str_unregister, *str_poll, *str_close,
    *str_fileno, *str_closed;

/* time.monotonic(), bit for bit: CLOCK_MONOTONIC in nanoseconds, divided as CPython does. */
static inline double
monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    /* CPython divides whole seconds as integers; below 2**53 ns (104 days) the double
     * division gives the same bits for them, so the costly modulo is done only above. */
    if (ns >= (1LL << 53) && ns % 1000000000LL == 0) {
        return (double)(ns / 1000000000LL);
    }
    return (double)ns / 1e9;
}

/* -- code kinds ----------------------------------------------------------------------------- */

/* Whether a code object is the user's, and if not, which argument of the library call is worth
 * recording: describe.is_user_code() decides, this table remembers the answer by the code
 * object's address. A dict keyed by code objects would hash each one's contents on every
 * lookup (CPython does not cache a code object's hash), which costs more than the rest of a
 * step's bookkeeping. Entries keep their code objects alive, as describe.py's dicts do, so an
 * address is never reused while it is in the table. */
typedef struct {
    PyObject *code;
    PyObject *kind; /* Py_True: the user's code; else the argument's name ("" for none) */
} CodeEntry;

static CodeEntry *code_table = NULL;
static size_t code_table_size = 0; /* a power of two */
static size_t code_table_used = 0;

static inline size_t
code_hash(PyObject *code)
{
    size_t h = (size_t)(uintptr_t)code >> 4;
    return h ^ (h >> 17);
}

static int
code_table_insert(PyObject *code, PyObject *kind)
{
    if (2 * (code_table_used + 1) > code_table_size) {
        size_t size = code_table_size ? 2 * code_table_size : 256;
        CodeEntry *table = PyMem_Calloc(size, sizeof(CodeEntry));
        if (table == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (size_t i = 0; i < code_table_size; i++) {
            if (code_table[i].code != NULL) {
                size_t j = code_hash(code_table[i].code) & (size - 1);
                while (table[j].code != NULL) {
                    j = (j + 1) & (size - 1);
                }
                table[j] = code_table[i];
            }
        }
        PyMem_Free(code_table);
        code_table = table;
        code_table_size = size;
    }
    size_t mask = code_table_size - 1;
    size_t i = code_hash(code) & mask;
    while (code_table[i].code != NULL) {
        if (code_table[i].code == code) {
            Py_SETREF(code_table[i].kind, Py_NewRef(kind));
            return 0;
        }
        i = (i + 1) & mask;
    }
    code_table[i].code = Py_NewRef(code);
    code_table[i].kind = Py_NewRef(kind);
    code_table_used++;
    return 0;
}

/* Borrowed: Py_True for the user's code, else the library call's argument name ("" for none);
 * NULL with an exception set on error. */
static PyObject *
code_kind(PyObject *code)
{
    if (code_table != NULL) {
        size_t mask = code_table_size - 1;
        for (size_t i = code_hash(code) & mask; code_table[i].code != NULL; i = (i + 1) & mask) {
            if (code_table[i].code == code) {
                return code_table[i].kind;
            }
        }
    }
    if (is_user_code_func == NULL || library_calls == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_speedups.configure() was not called");
        return NULL;
    }
    PyObject *answer = PyObject_CallOneArg(is_user_code_func, code);
    if (answer == NULL) {
        return NULL;
    }
    int user = PyObject_IsTrue(answer);
    Py_DECREF(answer);
    if (user < 0) {
        return NULL;
    }
    PyObject *kind = Py_True;
    if (!user) { /* is_user_code() has put the library call's argument in LIBRARY_CALLS */
        kind = PyDict_GetItemWithError(library_calls, code);
        if (kind == NULL) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            kind = str_empty;
        }
    }
    if (code_table_insert(code, kind) < 0) {
        return NULL;
    }
    return kind;
}

/* describe.user_site() in C: the innermost user frame at or outside frame, within the running
 * callback or task step. Sets *code (a new reference, None when there is none) and *lasti. */
static int
user_site(PyFrameObject *frame, PyObject **code, int *lasti)
{
    Py_XINCREF(frame);
    while (frame != NULL) {
        PyObject *frame_code = (PyObject *)PyFrame_GetCode(frame);
        if (frame_code == callback_entry) {
            Py_DECREF(frame_code);
            break;
        }
        PyObject *kind = code_kind(frame_code);
        if (kind == NULL) {
            Py_DECREF(frame_code);
            Py_DECREF(frame);
            return -1;
        }
        if (kind == Py_True) {
            *code = frame_code;
            *lasti = PyFrame_GetLasti(frame);
            Py_DECREF(frame);
            return 0;
        }
        Py_DECREF(frame_code);
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    Py_XDECREF(frame);
    *code = Py_NewRef(Py_None);
    *lasti = -1;
    return 0;
}

#if HAVE_FRAMES_IN_PLACE
/* -- frames in place: what differs between 3.11 and 3.13/3.14 ------------------------------- */

/* The thread's innermost interpreter frame (maybe incomplete). */
static inline _PyInterpreterFrame *
thread_frame(void)
{
#if PY_VERSION_HEX < 0x030C0000
    return PyThreadState_Get()->cframe->current_frame;
#else
    return PyThreadState_Get()->current_frame;
#endif
}

/* A complete frame's code object (borrowed). */
static inline PyObject *
frame_code_of(_PyInterpreterFrame *frame)
{
#if PY_VERSION_HEX < 0x030C0000
    return (PyObject *)frame->f_code;
#else
    return (PyObject *)_PyFrame_GetCode(frame);
#endif
}

/* A generator's or coroutine's own interpreter frame. */
static inline _PyInterpreterFrame *
gen_frame(PyGenObject *gen)
{
#if PY_VERSION_HEX < 0x030E0000
    return (_PyInterpreterFrame *)gen->gi_iframe;
#else
    return &gen->gi_iframe;
#endif
}

/* What a generator or coroutine awaits (borrowed; NULL for nothing), as _PyGen_yf reads it:
 * suspended in a SEND / YIELD_VALUE of an await, the awaited object is on top of its stack.
 * 3.11 tells by the RESUME that follows; 3.13 and 3.14 have a frame state for it. */
static inline PyObject *
gen_awaited(PyGenObject *gen)
{
#if PY_VERSION_HEX < 0x030C0000
    if (gen->gi_frame_state >= FRAME_CLEARED || gen->gi_frame_state == FRAME_CREATED) {
        return NULL;
    }
    _PyInterpreterFrame *frame = gen_frame(gen);
    _Py_CODEUNIT next = frame->prev_instr[1];
    int opcode = _Py_OPCODE(next);
    if ((opcode != RESUME && opcode != RESUME_QUICK) || _Py_OPARG(next) < 2) {
        return NULL;
    }
    return _PyFrame_StackPeek(frame);
#elif PY_VERSION_HEX < 0x030E0000
    if (gen->gi_frame_state != FRAME_SUSPENDED_YIELD_FROM) {
        return NULL;
    }
    return _PyFrame_StackPeek(gen_frame(gen));
#else
    if (gen->gi_frame_state != FRAME_SUSPENDED_YIELD_FROM) {
        return NULL;
    }
    return PyStackRef_AsPyObjectBorrow(_PyFrame_StackPeek(gen_frame(gen)));
#endif
}

/* Whether a generator's frame is gone (cr_frame / gi_frame would be None). */
static inline int
gen_finished(PyGenObject *gen)
{
#if PY_VERSION_HEX < 0x030C0000
    return gen->gi_frame_state == FRAME_CLEARED;
#else
    return FRAME_STATE_FINISHED(gen->gi_frame_state);
#endif
}

/* f_lasti of an interpreter frame, as PyFrame_GetLasti reads it through its frame object. */
static inline int
frame_lasti(_PyInterpreterFrame *frame)
{
    int lasti = _PyInterpreterFrame_LASTI(frame);
    return lasti < 0 ? -1 : lasti * (int)sizeof(_Py_CODEUNIT);
}

/* The innermost complete interpreter frame at or outside frame (PyFrame_GetBack's rule). */
static inline _PyInterpreterFrame *
complete_frame(_PyInterpreterFrame *frame)
{
    while (frame != NULL && _PyFrame_IsIncomplete(frame)) {
        frame = frame->previous;
    }
    return frame;
}

/* user_site() from the running Python code outwards, over the interpreter's own frames. */
static int
user_site_in_place(PyObject **code, int *lasti)
{
    _PyInterpreterFrame *frame = complete_frame(thread_frame());
    for (; frame != NULL; frame = complete_frame(frame->previous)) {
        PyObject *frame_code = frame_code_of(frame);
        if (frame_code == callback_entry) {
            break;
        }
        PyObject *kind = code_kind(frame_code);
        if (kind == NULL) {
            return -1;
        }
        if (kind == Py_True) {
            *code = Py_NewRef(frame_code);
            *lasti = frame_lasti(frame);
            return 0;
        }
    }
    *code = Py_NewRef(Py_None);
    *lasti = -1;
    return 0;
}
#endif

/* Where the running Python code (the caller of create_task) was called from in the user's
 * code: user_site() of the current frame. */
static int
spawn_site(PyObject **code, int *lasti)
{
#if HAVE_FRAMES_IN_PLACE
    if (frames_in_place) {
        return user_site_in_place(code, lasti);
    }
#endif
    return user_site(PyEval_GetFrame(), code, lasti);
}

/* -- Ring ---------------------------------------------------------------------------------- */

/* One record. The hot ones (a task step's end, its start when something happens during it, an
 * fd watched or unwatched, a task's plain exit) are stored as plain fields, allocating nothing
 * the GC sees; they become the very tuples Python would write only when drained. Every other
 * record arrives from Python as a finished tuple and is kept as it is. */
enum { SLOT_TUPLE, SLOT_STEP, SLOT_BEFORE, SLOT_FD_WATCH, SLOT_FD_UNWATCH, SLOT_EXIT, SLOT_SPAWN };

typedef struct {
    PyObject *record; /* SLOT_TUPLE: the whole record; SPAWN: the parent task's id */
    PyObject *task_id, *code, *await_code, *await_arg; /* EXIT: outcome, detail in await_*;
                                                        * SPAWN: coroutine code, site code,
                                                        * name */
    long long seq;
    double ended, started; /* FD_*, SPAWN: ended is the stamp */
    int lasti;             /* FD_*: the fd; SPAWN: the site's lasti */
    int what;              /* FD_WATCH: the mask; EXIT: before_sent */
    int kind;
    int before_sent;       /* STEP: its before_task_step was written */
} Slot;

typedef struct {
    PyObject_HEAD
    Slot *slots;
    Py_ssize_t capacity;
    Py_ssize_t head; /* the oldest record */
    Py_ssize_t size;
} Ring;

static void
slot_release(Slot *slot)
{
    Py_XDECREF(slot->record);
    Py_XDECREF(slot->task_id);
    Py_XDECREF(slot->code);
    Py_XDECREF(slot->await_code);
    Py_XDECREF(slot->await_arg);
}

/* The slot the next record goes to; when full, the oldest record is dropped into *evicted
 * (released by the caller once the ring is consistent again, as releasing can run Python). */
static Slot *
ring_claim(Ring *ring, Slot *evicted)
{
    Py_ssize_t index;
    if (ring->size == ring->capacity) {
        index = ring->head;
        *evicted = ring->slots[index];
        ring->head = index + 1 == ring->capacity ? 0 : index + 1;
    }
    else {
        index = ring->head + ring->size; /* no division on the hot path */
        if (index >= ring->capacity) {
            index -= ring->capacity;
        }
        ring->size++;
        evicted->record = evicted->task_id = evicted->code = NULL; /* what slot_release reads */
        evicted->await_code = evicted->await_arg = NULL;
    }
    return &ring->slots[index];
}

static int
Ring_init(Ring *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"capacity", NULL};
    Py_ssize_t capacity;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n", kwlist, &capacity)) {
        return -1;
    }
    if (capacity < 1) {
        PyErr_SetString(PyExc_ValueError, "a ring needs room for at least one record");
        return -1;
    }
    if (self->slots != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a ring is initialised once");
        return -1;
    }
    if ((size_t)capacity > PY_SSIZE_T_MAX / sizeof(Slot)) {
        PyErr_NoMemory();
        return -1;
    }
    size_t size = (size_t)capacity * sizeof(Slot);
    self->slots = PyMem_Malloc(size);
    if (self->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    /* Written now, not left to calloc: the kernel then maps every page here, when the loop is
     * made, instead of one page fault every 56 records while the loop runs (about 80 a W3
     * run, a fresh 4 KiB page each time until the ring has wrapped once). */
    memset(self->slots, 0, size);
    self->capacity = capacity;
    self->head = 0;
    self->size = 0;
    return 0;
}

static void
Ring_dealloc(Ring *self)
{
    if (self->slots != NULL) {
        for (Py_ssize_t i = 0; i < self->size; i++) {
            slot_release(&self->slots[(self->head + i) % self->capacity]);
        }
        PyMem_Free(self->slots);
        self->slots = NULL;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Ring_append(Ring *self, PyObject *record)
{
    if (self->slots == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ring not initialised");
        return NULL;
    }
    Slot evicted;
    Slot *slot = ring_claim(self, &evicted);
    memset(slot, 0, sizeof(Slot));
    slot->record = Py_NewRef(record);
    slot_release(&evicted);
    Py_RETURN_NONE;
}

/* A step end, stored as fields; steals the references to code, await_code and await_arg. */
static void
ring_push_step(Ring *self, long long seq, double ended, double started, PyObject *task_id,
               PyObject *code, int lasti, PyObject *await_code, PyObject *await_arg, int what,
               int before_sent)
{
    Slot evicted;
    Slot *slot = ring_claim(self, &evicted);
    *slot = (Slot){.kind = SLOT_STEP,
                   .seq = seq,
                   .ended = ended,
                   .started = started,
                   .task_id = Py_NewRef(task_id),
                   .code = code,
                   .lasti = lasti,
                   .await_code = await_code,
                   .await_arg = await_arg,
                   .what = what,
                   .before_sent = before_sent};
    slot_release(&evicted);
}

/* Any other unboxed record: the fields its kind uses (see slot_to_record); new references. */
static void
ring_push(Ring *self, int kind, long long seq, double ended, double started, PyObject *task_id,
          int number, int what, PyObject *first, PyObject *second)
{
    Slot evicted;
    Slot *slot = ring_claim(self, &evicted);
    *slot = (Slot){.kind = kind,
                   .seq = seq,
                   .ended = ended,
                   .started = started,
                   .task_id = Py_XNewRef(task_id),
                   .lasti = number,
                   .what = what,
                   .await_code = Py_XNewRef(first),
                   .await_arg = Py_XNewRef(second)};
    slot_release(&evicted);
}

/* A task spawn (SPAWN), stored as fields; new references. */
static void
ring_push_spawn(Ring *self, long long seq, double stamp, PyObject *task_id, PyObject *parent,
                PyObject *name, PyObject *coro_code, PyObject *site_code, int site_lasti)
{
    Slot evicted;
    Slot *slot = ring_claim(self, &evicted);
    *slot = (Slot){.kind = SLOT_SPAWN,
                   .seq = seq,
                   .ended = stamp,
                   .task_id = Py_NewRef(task_id),
                   .record = Py_NewRef(parent),
                   .await_arg = Py_NewRef(name),
                   .code = Py_NewRef(coro_code),
                   .await_code = Py_NewRef(site_code),
                   .lasti = site_lasti};
    slot_release(&evicted);
}

/* A tuple of n items, stealing the references (NULL items: fail, releasing the others). */
static PyObject *
pack_stolen(Py_ssize_t n, PyObject **items)
{
    PyObject *record = PyTuple_New(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (record == NULL || items[i] == NULL) {
            Py_CLEAR(record);
            Py_XDECREF(items[i]);
            continue;
        }
        PyTuple_SET_ITEM(record, i, items[i]);
    }
    if (record != NULL) {
        PyObject_GC_UnTrack(record); /* numbers and strings: no cycles */
    }
    return record;
}

/* The tuple of an unboxed record other than a step; consumes the slot's references. */
static PyObject *
unboxed_to_record(Slot *slot)
{
    PyObject *record = NULL;
    PyObject *seq = PyLong_FromLongLong(slot->seq);
    switch (slot->kind) {
    case SLOT_BEFORE: {
        PyObject *items[] = {Py_NewRef(before_step_code), seq,
                             PyFloat_FromDouble(slot->started), Py_NewRef(slot->task_id)};
        record = pack_stolen(4, items);
        break;
    }
    case SLOT_FD_WATCH: {
        PyObject *items[] = {Py_NewRef(fd_watch_code), seq, PyFloat_FromDouble(slot->ended),
                             PyLong_FromLong(slot->lasti), PyLong_FromLong(slot->what)};
        record = pack_stolen(5, items);
        break;
    }
    case SLOT_FD_UNWATCH: {
        PyObject *items[] = {Py_NewRef(fd_unwatch_code), seq, PyFloat_FromDouble(slot->ended),
                             PyLong_FromLong(slot->lasti)};
        record = pack_stolen(4, items);
        break;
    }
    case SLOT_SPAWN: {
        PyObject *items[] = {Py_NewRef(spawn_code),
                             seq,
                             PyFloat_FromDouble(slot->ended),
                             Py_NewRef(slot->task_id),
                             Py_NewRef(slot->record),
                             Py_NewRef(slot->await_arg),
                             Py_NewRef(slot->code),
                             Py_NewRef(slot->await_code),
                             PyLong_FromLong(slot->lasti)};
        record = pack_stolen(9, items);
        break;
    }
    case SLOT_EXIT: {
        PyObject *items[] = {Py_NewRef(exit_code),
                             seq,
                             PyFloat_FromDouble(slot->ended),
                             Py_NewRef(slot->task_id),
                             Py_NewRef(slot->await_code),
                             Py_NewRef(slot->await_arg),
                             PyFloat_FromDouble(slot->started),
                             Py_NewRef(slot->what ? Py_True : Py_False)};
        record = pack_stolen(8, items);
        break;
    }
    default:
        Py_XDECREF(seq);
        PyErr_SetString(PyExc_SystemError, "a ring slot of unknown kind");
    }
    slot_release(slot);
    return record;
}

/* (STEP, seq, ended, started, tid, code, lasti, await_code, await_arg, what, before_sent), as the
 * Python proxy writes it; consumes the slot's references. */
static PyObject *
slot_to_record(Slot *slot)
{
    if (slot->kind == SLOT_TUPLE) {
        return slot->record;
    }
    if (slot->kind != SLOT_STEP) {
        return unboxed_to_record(slot);
    }
    PyObject *record = PyTuple_New(11);
    PyObject *seq = PyLong_FromLongLong(slot->seq);
    PyObject *ended = PyFloat_FromDouble(slot->ended);
    PyObject *started = PyFloat_FromDouble(slot->started);
    PyObject *lasti = PyLong_FromLong(slot->lasti);
    PyObject *what = PyLong_FromLong(slot->what);
    if (record == NULL || seq == NULL || ended == NULL || started == NULL || lasti == NULL ||
        what == NULL) {
        Py_XDECREF(record);
        Py_XDECREF(seq);
        Py_XDECREF(ended);
        Py_XDECREF(started);
        Py_XDECREF(lasti);
        Py_XDECREF(what);
        slot_release(slot);
        return NULL;
    }
    PyTuple_SET_ITEM(record, 0, Py_NewRef(step_code));
    PyTuple_SET_ITEM(record, 1, seq);
    PyTuple_SET_ITEM(record, 2, ended);
    PyTuple_SET_ITEM(record, 3, started);
    PyTuple_SET_ITEM(record, 4, slot->task_id);
    PyTuple_SET_ITEM(record, 5, slot->code);
    PyTuple_SET_ITEM(record, 6, lasti);
    PyTuple_SET_ITEM(record, 7, slot->await_code);
    PyTuple_SET_ITEM(record, 8, slot->await_arg);
    PyTuple_SET_ITEM(record, 9, what);
    PyTuple_SET_ITEM(record, 10, Py_NewRef(slot->before_sent ? Py_True : Py_False));
    PyObject_GC_UnTrack(record); /* numbers, strings and code objects: no cycles */
    return record;
}

static PyObject *
Ring_drain(Ring *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t count = self->size;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "drain() takes at most one argument");
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None) {
        Py_ssize_t limit = PyLong_AsSsize_t(args[0]);
        if (limit == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (limit < count) {
            count = limit < 0 ? 0 : limit;
        }
    }
    /* Detach the records first: building tuples may run the GC, and a finalizer may record. */
    Slot *taken = count ? PyMem_Malloc((size_t)count * sizeof(Slot)) : NULL;
    if (count && taken == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Slot *slot = &self->slots[(self->head + i) % self->capacity];
        taken[i] = *slot;
        memset(slot, 0, sizeof(Slot));
    }
    if (count) {
        self->head = (self->head + count) % self->capacity;
        self->size -= count;
    }
    PyObject *batch = PyList_New(count);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (batch == NULL) {
            slot_release(&taken[i]);
            continue;
        }
        PyObject *record = slot_to_record(&taken[i]);
        if (record == NULL) {
            Py_CLEAR(batch);
            continue;
        }
        PyList_SET_ITEM(batch, i, record);
    }
    PyMem_Free(taken);
    return batch;
}

static Py_ssize_t
Ring_len(Ring *self)
{
    return self->size;
}

static PyMethodDef Ring_methods[] = {
    {"append", (PyCFunction)Ring_append, METH_O,
     "Add a record; when full, the oldest record is dropped."},
    {"drain", (PyCFunction)(void (*)(void))Ring_drain, METH_FASTCALL,
     "Take up to ``limit`` records (all by default), oldest first, as tuples."},
    {NULL}};

static PyMemberDef Ring_members[] = {
    {"capacity", T_PYSSIZET, offsetof(Ring, capacity), READONLY, "records it holds at most"},
    {NULL}};

static PySequenceMethods Ring_as_sequence = {
    .sq_length = (lenfunc)Ring_len,
};

static PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loopviz.trace._speedups.Ring",
    .tp_doc = "A bounded record buffer that drops the oldest; steps are stored unboxed.",
    .tp_basicsize = sizeof(Ring),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ring_init,
    .tp_dealloc = (destructor)Ring_dealloc,
    .tp_methods = Ring_methods,
    .tp_members = Ring_members,
    .tp_as_sequence = &Ring_as_sequence,
};

/* -- Recorder ----------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *append;  /* the event buffer's append */
    PyObject *current; /* id of the task being stepped, or None */
    PyObject *ring;    /* the buffer's Ring, if it is one: steps are written into it directly */
    PyObject *loop_thread_id; /* threading.get_ident() of the loop's thread, or None */
    PyObject *proxy_type;     /* what create_task wraps a task's coroutine in */
    PyObject *pending_spawn;  /* a spawn not recorded yet while create_task runs, or None */
    double step_started;
    double stall_limit;
    long long seq;
    long long task_ids; /* the last task id given out */
    char special;
    char before_sent;
    char details;
    char watch_stopped;            /* stop_watching() was called */
    PyThread_type_lock watch_lock; /* held until stop_watching(): wait_for_stall's timer */
} Recorder;

static int
Recorder_traverse(Recorder *self, visitproc visit, void *arg)
{
    Py_VISIT(self->append);
    Py_VISIT(self->current);
    Py_VISIT(self->ring);
    Py_VISIT(self->loop_thread_id);
    Py_VISIT(self->proxy_type);
    Py_VISIT(self->pending_spawn);
    return 0;
}

static int
Recorder_clear(Recorder *self)
{
    Py_CLEAR(self->append);
    Py_CLEAR(self->current);
    Py_CLEAR(self->ring);
    Py_CLEAR(self->loop_thread_id);
    Py_CLEAR(self->proxy_type);
    Py_CLEAR(self->pending_spawn);
    return 0;
}

static void
Recorder_dealloc(Recorder *self)
{
    PyObject_GC_UnTrack(self);
    if (self->watch_lock != NULL) {
        if (!self->watch_stopped) {
            PyThread_release_lock(self->watch_lock);
        }
        PyThread_free_lock(self->watch_lock);
        self->watch_lock = NULL;
    }
    Recorder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Recorder_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Recorder *self = (Recorder *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->current = Py_NewRef(Py_None);
    self->append = NULL;
    self->ring = NULL;
    self->loop_thread_id = Py_NewRef(Py_None);
    self->proxy_type = Py_NewRef(Py_None);
    self->pending_spawn = Py_NewRef(Py_None);
    self->step_started = 0.0;
    self->stall_limit = 0.1;
    self->seq = 0;
    self->task_ids = 0;
    self->special = 0;
    self->before_sent = 0;
    self->details = 1;
    self->watch_stopped = 0;
    self->watch_lock = PyThread_allocate_lock();
    if (self->watch_lock == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    PyThread_acquire_lock(self->watch_lock, WAIT_LOCK);
    return (PyObject *)self;
}

static PyObject *
Recorder_next_seq(Recorder *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(self->seq++);
}

static PyObject *
Recorder_new_task_id(Recorder *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(++self->task_ids);
}

/* Add a finished record tuple to the buffer (the ring directly, or the append callable). */
static int
recorder_add(Recorder *self, PyObject *record)
{
    if (self->ring != NULL && Py_IS_TYPE(self->ring, &RingType)) {
        PyObject *r = Ring_append((Ring *)self->ring, record);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    if (self->append == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the recorder has no buffer");
        return -1;
    }
    PyObject *r = PyObject_CallOneArg(self->append, record);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

static int
on_loop_thread(Recorder *self)
{
    if (self->loop_thread_id == NULL || !PyLong_Check(self->loop_thread_id)) {
        return 0;
    }
    unsigned long ident = PyLong_AsUnsignedLong(self->loop_thread_id);
    if (ident == (unsigned long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return ident == PyThread_get_thread_ident();
}

/* The ring the recorder writes unboxed records to, or NULL (then records are tuples). */
static inline Ring *
recorder_ring(Recorder *self)
{
    if (self->ring != NULL && Py_IS_TYPE(self->ring, &RingType) &&
        ((Ring *)self->ring)->slots != NULL) {
        return (Ring *)self->ring;
    }
    return NULL;
}

/* Inside a task step, on the loop's thread, write the step's before_task_step (BEFORE_STEP)
 * once, ahead of whatever the step records: the stream keeps its order. */
static int
open_step(Recorder *self)
{
    if (self->current == NULL || self->current == Py_None || self->before_sent ||
        !on_loop_thread(self)) {
        return 0;
    }
    self->before_sent = 1;
    Ring *ring = recorder_ring(self);
    if (ring != NULL) {
        ring_push(ring, SLOT_BEFORE, self->seq++, 0.0, self->step_started, self->current, 0, 0,
                  NULL, NULL);
        return 0;
    }
    PyObject *before = PyTuple_New(4);
    PyObject *seq = PyLong_FromLongLong(self->seq++);
    PyObject *started = PyFloat_FromDouble(self->step_started);
    if (before == NULL || seq == NULL || started == NULL) {
        Py_XDECREF(before);
        Py_XDECREF(seq);
        Py_XDECREF(started);
        return -1;
    }
    PyTuple_SET_ITEM(before, 0, Py_NewRef(before_step_code));
    PyTuple_SET_ITEM(before, 1, seq);
    PyTuple_SET_ITEM(before, 2, started);
    PyTuple_SET_ITEM(before, 3, Py_NewRef(self->current));
    int failed = recorder_add(self, before);
    Py_DECREF(before);
    return failed ? -1 : 0;
}

/* record(code, *payload): append (code, seq, monotonic(), *payload), opening the current
 * task step first (see open_step). The same as PyRecorder.record. */
static PyObject *
Recorder_record(Recorder *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "record() needs a record code");
        return NULL;
    }
    if (before_step_code == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_speedups.configure() was not called");
        return NULL;
    }
    if (open_step(self) < 0) {
        return NULL;
    }
    PyObject *record = PyTuple_New(nargs + 2);
    PyObject *seq = PyLong_FromLongLong(self->seq++);
    PyObject *wall = PyFloat_FromDouble(monotonic());
    if (record == NULL || seq == NULL || wall == NULL) {
        Py_XDECREF(record);
        Py_XDECREF(seq);
        Py_XDECREF(wall);
        return NULL;
    }
    PyTuple_SET_ITEM(record, 0, Py_NewRef(args[0]));
    PyTuple_SET_ITEM(record, 1, seq);
    PyTuple_SET_ITEM(record, 2, wall);
    for (Py_ssize_t i = 1; i < nargs; i++) {
        PyTuple_SET_ITEM(record, i + 2, Py_NewRef(args[i]));
    }
    int failed = recorder_add(self, record);
    Py_DECREF(record);
    if (failed) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* wait_for_stall(sampled): block, without the GIL, until a task step has run past the stall
 * limit (and began at another time than ``sampled``, the step already looked at); return
 * when it began, or None once stop_watching() was called. The stall watchdog's wait: a
 * healthy loop never hands the GIL to it. */
static PyObject *
Recorder_wait_for_stall(Recorder *self, PyObject *sampled_obj)
{
    double sampled = PyFloat_AsDouble(sampled_obj);
    if (sampled == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (self->watch_lock == NULL || self->watch_stopped) {
        Py_RETURN_NONE;
    }
    volatile double *started_at = &self->step_started, *limit_at = &self->stall_limit;
    PyThread_type_lock lock = self->watch_lock;
    double started = 0.0;
    int stopped = 0;
    Py_BEGIN_ALLOW_THREADS
    while (1) {
        double limit = *limit_at;
        double wait = limit / 4 < 0.025 ? limit / 4 : 0.025; /* as the Python watchdog polls */
        wait = wait > 0.004 ? wait : 0.004;
        if (PyThread_acquire_lock_timed(lock, (PY_TIMEOUT_T)(wait * 1e6), 0) == PY_LOCK_ACQUIRED) {
            PyThread_release_lock(lock); /* stopped: leave it free for any later wait */
            stopped = 1;
            break;
        }
        started = *started_at;
        if (started != 0.0 && started != sampled && monotonic() - started >= *limit_at) {
            break;
        }
    }
    Py_END_ALLOW_THREADS
    if (stopped) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(started);
}

/* stop_watching(): wake wait_for_stall() for good (the loop is closing). */
static PyObject *
Recorder_stop_watching(Recorder *self, PyObject *Py_UNUSED(ignored))
{
    if (self->watch_lock != NULL && !self->watch_stopped) {
        self->watch_stopped = 1;
        PyThread_release_lock(self->watch_lock);
    }
    Py_RETURN_NONE;
}

static PyMethodDef Recorder_methods[] = {
    {"wait_for_stall", (PyCFunction)Recorder_wait_for_stall, METH_O,
     "Block without the GIL until a step overruns the stall limit; its start, or None once "
     "stop_watching() was called."},
    {"stop_watching", (PyCFunction)Recorder_stop_watching, METH_NOARGS,
     "End wait_for_stall() for good."},
    {"record", (PyCFunction)(void (*)(void))Recorder_record, METH_FASTCALL,
     "record(code, *payload): append a record, opening the current task step first."},
    {"next_seq", (PyCFunction)Recorder_next_seq, METH_NOARGS,
     "The next record's sequence number (0, 1, 2...); gaps in a stream are lost records."},
    {"new_task_id", (PyCFunction)Recorder_new_task_id, METH_NOARGS,
     "A new task's id in the events (1, 2, 3...)."},
    {NULL}};

static PyMemberDef Recorder_members[] = {
    {"append", T_OBJECT, offsetof(Recorder, append), 0, "the event buffer's append"},
    {"ring", T_OBJECT, offsetof(Recorder, ring), 0,
     "the buffer's Ring, which the C step end writes to directly (None: call append)"},
    {"loop_thread_id", T_OBJECT, offsetof(Recorder, loop_thread_id), 0,
     "threading.get_ident() of the loop's thread, or None before it runs"},
    {"current", T_OBJECT, offsetof(Recorder, current), 0, "the task being stepped, or None"},
    {"proxy_type", T_OBJECT, offsetof(Recorder, proxy_type), 0,
     "the coroutine proxy create_task wraps a task's coroutine in (set by the loop)"},
    {"pending_spawn", T_OBJECT, offsetof(Recorder, pending_spawn), 0,
     "a task spawn not recorded yet, while asyncio's create_task runs (eager tasks), or None"},
    {"step_started", T_DOUBLE, offsetof(Recorder, step_started), 0,
     "monotonic time the current step began; 0.0 if none"},
    {"stall_limit", T_DOUBLE, offsetof(Recorder, stall_limit), 0,
     "wall seconds a step may take before it counts as a stall"},
    {"special", T_BOOL, offsetof(Recorder, special), 0, "the next step end takes the slow path"},
    {"before_sent", T_BOOL, offsetof(Recorder, before_sent), 0,
     "this step's before_task_step was written"},
    {"details", T_BOOL, offsetof(Recorder, details), 0, "describe suspensions"},
    {"task_ids", T_LONGLONG, offsetof(Recorder, task_ids), 0,
     "the last task id given out (set before the loop runs to number its tasks from there)"},
    {NULL}};

static PyTypeObject RecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loopviz.trace._speedups.Recorder",
    .tp_doc = "The per-loop state a task step touches, shared by C and Python.",
    .tp_basicsize = sizeof(Recorder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Recorder_new,
    .tp_traverse = (traverseproc)Recorder_traverse,
    .tp_clear = (inquiry)Recorder_clear,
    .tp_dealloc = (destructor)Recorder_dealloc,
    .tp_methods = Recorder_methods,
    .tp_members = Recorder_members,
};

/* -- CoroProxy ---------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *coro;    /* the user's coroutine */
    PyObject *tracer;  /* a Recorder (Tracer) */
    PyObject *task_id; /* int */
    PyObject *code;    /* the coroutine's code if it is the user's native coroutine, else None */
    PyObject *frame;   /* its frame object once read (see proxy_frame), until the task ends */
} CoroProxy;

static int
CoroProxy_traverse(CoroProxy *self, visitproc visit, void *arg)
{
    Py_VISIT(self->coro);
    Py_VISIT(self->tracer);
    Py_VISIT(self->task_id);
    Py_VISIT(self->code);
    Py_VISIT(self->frame);
    return 0;
}

static int
CoroProxy_clear(CoroProxy *self)
{
    Py_CLEAR(self->coro);
    Py_CLEAR(self->tracer);
    Py_CLEAR(self->task_id);
    Py_CLEAR(self->code);
    Py_CLEAR(self->frame);
    return 0;
}

/* Proxies of the type the loop makes (TracedCoroutine, see inherit_send) are kept for reuse
 * when they die: a reused one is taken without a new GC allocation, so the tasks of a busy
 * server do not bring the next collection closer (one GC allocation a task made 3.14 run
 * more young collections on W3). The objects stay allocated, cleared and untracked, as
 * CPython's own freelists keep lists and tuples. */
#define PROXY_FREELIST_SIZE 1024 /* at 72 bytes each, at most 72 KiB kept */
static PyTypeObject *proxy_freelist_type = NULL; /* the only type kept; a strong reference */
static CoroProxy *proxy_freelist[PROXY_FREELIST_SIZE];
static int proxy_numfree = 0;

static void
CoroProxy_dealloc(CoroProxy *self)
{
    PyObject_GC_UnTrack(self);
    CoroProxy_clear(self);
    if (Py_TYPE(self) == proxy_freelist_type && proxy_numfree < PROXY_FREELIST_SIZE) {
        /* subtype_dealloc still releases the object's reference to its type: taking it from
         * the list again makes a new one (PyObject_Init) */
        proxy_freelist[proxy_numfree++] = self;
        return;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A new, tracked proxy of ``type`` with every field NULL: a kept one when there is one. */
static CoroProxy *
proxy_alloc(PyTypeObject *type)
{
    if (type == proxy_freelist_type && proxy_numfree > 0) {
        CoroProxy *proxy = proxy_freelist[--proxy_numfree];
        (void)PyObject_Init((PyObject *)proxy, type);
        PyObject_GC_Track(proxy);
        return proxy;
    }
    return (CoroProxy *)type->tp_alloc(type, 0);
}

static PyObject *
CoroProxy_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    return (PyObject *)proxy_alloc(type);
}

static int
CoroProxy_init(CoroProxy *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"coro", "tracer", "task_id", "code", NULL};
    PyObject *coro, *tracer, *task_id, *code = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|O", kwlist, &coro, &tracer, &task_id,
                                     &code)) {
        return -1;
    }
    if (!PyObject_TypeCheck(tracer, &RecorderType)) {
        PyErr_SetString(PyExc_TypeError, "tracer must be a Recorder");
        return -1;
    }
    Py_XSETREF(self->coro, Py_NewRef(coro));
    Py_XSETREF(self->tracer, Py_NewRef(tracer));
    Py_XSETREF(self->task_id, Py_NewRef(task_id));
    Py_XSETREF(self->code, Py_NewRef(code));
    return 0;
}

/* How the C Task gives the cancel flag, once seen: its type, and the getter of the flag's
 * descriptor (3.11) or its offset as a bool member. The descriptor is what the attribute
 * lookup would find and call, so the flag is read the same way without a lookup for every
 * task's end. */
static PyTypeObject *flag_task_type = NULL;
static getter flag_getter = NULL;
static void *flag_closure = NULL;
static Py_ssize_t flag_offset = -1;

/* Remember how ``type`` gives the flag, if its descriptor is a C getter or a bool member. */
static void
learn_flag_access(PyTypeObject *type)
{
    PyObject *descr = PyObject_GetAttr((PyObject *)type, cancel_pending_attr);
    if (descr == NULL) {
        PyErr_Clear();
        return;
    }
    if (Py_IS_TYPE(descr, &PyGetSetDescr_Type) &&
        ((PyGetSetDescrObject *)descr)->d_getset->get != NULL) {
        flag_getter = ((PyGetSetDescrObject *)descr)->d_getset->get;
        flag_closure = ((PyGetSetDescrObject *)descr)->d_getset->closure;
        flag_offset = -1;
        Py_XSETREF(flag_task_type, (PyTypeObject *)Py_NewRef(type));
    }
    else if (Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
             ((PyMemberDescrObject *)descr)->d_member->type == T_BOOL) {
        flag_getter = NULL;
        flag_offset = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_XSETREF(flag_task_type, (PyTypeObject *)Py_NewRef(type));
    }
    Py_DECREF(descr);
}

/* The task's cancel flag: 1, 0, or -1 on error. */
static int
cancel_flag(PyObject *task)
{
    if (Py_TYPE(task) == flag_task_type && flag_getter == NULL) {
        return *((char *)task + flag_offset) != 0;
    }
    PyObject *flag = Py_TYPE(task) == flag_task_type ? flag_getter(task, flag_closure)
                                                      : PyObject_GetAttr(task, cancel_pending_attr);
    int pending = flag == NULL ? -1 : PyObject_IsTrue(flag);
    Py_XDECREF(flag);
    if (pending >= 0 && Py_TYPE(task) != flag_task_type) {
        learn_flag_access(Py_TYPE(task));
    }
    return pending;
}

/* Whether the task running now drives this proxy and has a cancel() waiting (asyncio then
 * ends it cancelled, not returned): -1 on error. The running task is read from asyncio's own
 * table (handed over by loop.py) and its flag first, so the common answer costs two lookups;
 * without the table, asyncio.current_task() is called. */
static int
cancel_waiting(CoroProxy *self)
{
    PyObject *task;
    if (current_tasks != NULL && running_loop_func != NULL) {
        PyObject *loop = PyObject_CallNoArgs(running_loop_func);
        if (loop == NULL) {
            return -1;
        }
        task = loop == Py_None ? NULL : PyDict_GetItemWithError(current_tasks, loop);
        Py_DECREF(loop);
        if (task == NULL) {
            return PyErr_Occurred() ? -1 : 0; /* driven by hand, outside a running loop */
        }
        Py_INCREF(task);
    }
    else {
        task = PyObject_CallNoArgs(current_task_func);
        if (task == NULL) {
            PyErr_Clear(); /* driven by hand, outside a running loop */
            return 0;
        }
        if (task == Py_None) {
            Py_DECREF(task);
            return 0;
        }
    }
    /* the loop module knows how asyncio keeps the flag, and tells us */
    int pending = cancel_flag(task);
    if (pending > 0) {
        PyObject *coro = PyObject_CallMethodNoArgs(task, str_get_coro);
        pending = coro == NULL ? -1 : coro == (PyObject *)self;
        Py_XDECREF(coro);
    }
    Py_DECREF(task);
    return pending;
}

/* The common exit, as Tracer.step_failed records it: the coroutine returned None, nothing else
 * to report. 1: recorded; 0: take the Python path; -1: error. */
static int
record_return(CoroProxy *self, Recorder *tracer, double started, double ended)
{
    int cancelled = cancel_waiting(self);
    if (cancelled < 0) {
        return -1;
    }
    PyObject *outcome = cancelled ? str_cancelled : str_returned;
    int before_sent = tracer->before_sent;
    Ring *ring = recorder_ring(tracer);
    int failed = 0;
    if (ring != NULL) {
        ring_push(ring, SLOT_EXIT, tracer->seq++, ended, started, self->task_id, 0, before_sent,
                  outcome, str_empty);
    }
    else {
        PyObject *record = PyTuple_New(8);
        PyObject *seq = PyLong_FromLongLong(tracer->seq);
        PyObject *ended_obj = PyFloat_FromDouble(ended);
        PyObject *started_obj = PyFloat_FromDouble(started);
        if (record == NULL || seq == NULL || ended_obj == NULL || started_obj == NULL) {
            Py_XDECREF(record);
            Py_XDECREF(seq);
            Py_XDECREF(ended_obj);
            Py_XDECREF(started_obj);
            return -1;
        }
        tracer->seq++;
        PyTuple_SET_ITEM(record, 0, Py_NewRef(exit_code));
        PyTuple_SET_ITEM(record, 1, seq);
        PyTuple_SET_ITEM(record, 2, ended_obj);
        PyTuple_SET_ITEM(record, 3, Py_NewRef(self->task_id));
        PyTuple_SET_ITEM(record, 4, Py_NewRef(outcome));
        PyTuple_SET_ITEM(record, 5, Py_NewRef(str_empty));
        PyTuple_SET_ITEM(record, 6, started_obj);
        PyTuple_SET_ITEM(record, 7, Py_NewRef(before_sent ? Py_True : Py_False));
        failed = recorder_add(tracer, record);
        Py_DECREF(record);
    }
    Py_XSETREF(tracer->current, Py_NewRef(Py_None));
    tracer->step_started = 0.0;
    tracer->before_sent = 0;
    return failed ? -1 : 1;
}

/* The step ended the coroutine (returned or raised): Tracer.step_failed records the exit. */
static PySendResult
step_finished(CoroProxy *self, PySendResult status, PyObject *value, double started,
              PyObject **result)
{
    PyObject *type, *exc, *tb;
    Recorder *tracer = (Recorder *)self->tracer;
    Py_CLEAR(self->frame); /* the task is over: no more suspensions to describe */
    if (status == PYGEN_RETURN && value == Py_None && !tracer->special && exit_code != NULL &&
        current_task_func != NULL && cancel_pending_attr != NULL) {
        double ended = monotonic();
        if (ended - started <= tracer->stall_limit) {
            int recorded = record_return(self, tracer, started, ended);
            if (recorded < 0) {
                PyErr_WriteUnraisable((PyObject *)self);
            }
            if (recorded != 0) {
                *result = value;
                return status;
            }
        }
    }
    if (status == PYGEN_RETURN) {
        exc = PyObject_CallOneArg(PyExc_StopIteration, value);
        if (exc == NULL) {
            PyErr_Clear();
            *result = value;
            return status;
        }
        PyObject *args[] = {self->tracer, self->task_id, exc, NULL, (PyObject *)self};
        PyObject *started_obj = PyFloat_FromDouble(started);
        if (started_obj != NULL) {
            args[3] = started_obj;
            PyObject *r = PyObject_VectorcallMethod(str_step_failed, args,
                                                    5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
            Py_XDECREF(r);
            Py_DECREF(started_obj);
        }
        if (PyErr_Occurred()) { /* tracing never breaks the program */
            PyErr_WriteUnraisable((PyObject *)self);
        }
        Py_DECREF(exc);
        *result = value;
        return status;
    }
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (tb != NULL && exc != NULL) {
        PyException_SetTraceback(exc, tb);
    }
    PyObject *started_obj = PyFloat_FromDouble(started);
    if (started_obj != NULL && exc != NULL) {
        PyObject *args[] = {self->tracer, self->task_id, exc, started_obj, (PyObject *)self};
        PyObject *r = PyObject_VectorcallMethod(str_step_failed, args,
                                                5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_XDECREF(r);
    }
    Py_XDECREF(started_obj);
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    PyErr_Restore(type, exc, tb);
    *result = NULL;
    return PYGEN_ERROR;
}

/* The code object of a native coroutine or generator (new reference): read from the object
 * itself on 3.11, where its struct is public, from its frame in place on 3.13 and 3.14, else
 * through the attribute. */
static PyObject *
code_of(PyObject *obj, int coroutine)
{
#if PY_VERSION_HEX < 0x030C0000
    (void)coroutine;
    return Py_NewRef((PyObject *)((PyGenObject *)obj)->gi_code);
#else
#if HAVE_FRAMES_IN_PLACE
    if (frames_in_place) {
        return Py_NewRef(frame_code_of(gen_frame((PyGenObject *)obj)));
    }
#endif
    return PyObject_GetAttr(obj, coroutine ? str_cr_code : str_gi_code);
#endif
}

/* What a native coroutine or generator awaits (cr_await / gi_yieldfrom; new reference, None
 * for nothing), in place where frames are read in place (gen_awaited). */
static PyObject *
awaited_by(PyObject *obj, int coroutine)
{
#if HAVE_FRAMES_IN_PLACE
    if (frames_in_place) {
        PyObject *awaited = gen_awaited((PyGenObject *)obj);
        return Py_NewRef(awaited == NULL ? Py_None : awaited);
    }
#endif
    return PyObject_GetAttr(obj, coroutine ? str_cr_await : str_gi_yieldfrom);
}

/* The user's coroutine's frame object (borrowed), None once it finished, NULL on error. Kept
 * after the first read: every read of cr_frame runs the audit hook machinery and a lookup,
 * and the object stays the same for the coroutine's life. */
static PyObject *
proxy_frame(CoroProxy *self)
{
    if (self->frame == NULL) {
        PyObject *frame = PyObject_GetAttr(self->coro, str_cr_frame);
        if (frame == NULL) {
            return NULL;
        }
        if (!PyFrame_Check(frame)) {
            Py_DECREF(frame);
            return Py_None;
        }
        self->frame = frame;
    }
    return self->frame;
}

/* f_lasti of a native coroutine's or generator's frame: 0 and *lasti, 1 when it has finished
 * (its frame is None), -1 on error. The proxy's own coroutine goes through proxy_frame(). */
static int
gen_lasti(CoroProxy *self, PyObject *gen, int coroutine, int *lasti)
{
#if HAVE_FRAMES_IN_PLACE
    if (frames_in_place) {
        PyGenObject *in_place = (PyGenObject *)gen;
        if (gen_finished(in_place)) {
            return 1;
        }
        *lasti = frame_lasti(gen_frame(in_place));
        return 0;
    }
#endif
    PyObject *frame = gen == self->coro && coroutine
                          ? Py_XNewRef(proxy_frame(self))
                          : PyObject_GetAttr(gen, coroutine ? str_cr_frame : str_gi_frame);
    if (frame == NULL) {
        return -1;
    }
    int finished = !PyFrame_Check(frame);
    if (!finished) {
        *lasti = PyFrame_GetLasti((PyFrameObject *)frame);
    }
    Py_DECREF(frame);
    return finished;
}

/* Fill code/lasti/await_code/await_arg from TracedCoroutine._describe() (the general walk). */
static int
describe_slow(CoroProxy *self, PyObject **code, PyObject **lasti, PyObject **await_code,
              PyObject **await_arg)
{
    PyObject *described = PyObject_CallMethodNoArgs((PyObject *)self, str_describe);
    if (described == NULL) {
        return -1;
    }
    if (!PyTuple_Check(described) || PyTuple_GET_SIZE(described) != 4) {
        Py_DECREF(described);
        PyErr_SetString(PyExc_TypeError, "_describe() must return a 4-tuple");
        return -1;
    }
    Py_XSETREF(*code, Py_NewRef(PyTuple_GET_ITEM(described, 0)));
    Py_XSETREF(*lasti, Py_NewRef(PyTuple_GET_ITEM(described, 1)));
    Py_XSETREF(*await_code, Py_NewRef(PyTuple_GET_ITEM(described, 2)));
    Py_XSETREF(*await_arg, Py_NewRef(PyTuple_GET_ITEM(described, 3)));
    Py_DECREF(described);
    return 0;
}

/* describe.suspension() in C: walk the cr_await / gi_yieldfrom chain from the task's coroutine;
 * the innermost user frame is where the task stands, the first library frame what it awaits.
 * Anything that is not a native coroutine or generator ends the walk, as it does there. */
static int
describe_walk(CoroProxy *self, PyObject **code, PyObject **lasti, PyObject **await_code,
              PyObject **await_arg)
{
    PyObject *user_code = Py_NewRef(Py_None);
    int user_lasti = -1, user_lasti_next = -1;
    PyObject *obj = Py_NewRef(self->coro);
    while (1) {
        int coroutine = PyCoro_CheckExact(obj);
        if (!coroutine && !PyGen_CheckExact(obj)) {
            break;
        }
        /* The frame is read only when it tells something (the user's line, a call's
         * argument): the outermost frame of a library task needs none. */
        PyObject *frame_code = code_of(obj, coroutine);
        if (frame_code == NULL) {
            goto error;
        }
        PyObject *kind = code_kind(frame_code);
        if (kind == NULL) {
            Py_DECREF(frame_code);
            goto error;
        }
        if (kind != Py_True) { /* a library call: what the task awaits */
            PyObject *arg = Py_NewRef(Py_None);
            if (PyUnicode_Check(kind) && PyUnicode_GET_LENGTH(kind) > 0) {
                PyObject *frame =
                    PyObject_GetAttr(obj, coroutine ? str_cr_frame : str_gi_frame);
                if (frame != NULL && !PyFrame_Check(frame)) { /* None: finished */
                    Py_DECREF(frame);
                    Py_DECREF(frame_code);
                    Py_DECREF(arg);
                    break;
                }
                Py_SETREF(arg, frame == NULL ? NULL
                                             : PyObject_CallFunctionObjArgs(argument_func, frame,
                                                                            kind, NULL));
                Py_XDECREF(frame);
            }
            if (arg == NULL) {
                Py_DECREF(frame_code);
                goto error;
            }
            *lasti = PyLong_FromLong(user_lasti);
            if (*lasti == NULL) {
                Py_DECREF(frame_code);
                Py_DECREF(arg);
                goto error;
            }
            *code = user_code;
            *await_code = frame_code;
            *await_arg = arg;
            Py_DECREF(obj);
            return 0;
        }
        int finished = gen_lasti(self, obj, coroutine, &user_lasti_next);
        if (finished != 0) {
            Py_DECREF(frame_code);
            if (finished < 0) {
                goto error;
            }
            break;
        }
        user_lasti = user_lasti_next;
        Py_SETREF(user_code, frame_code);
        Py_SETREF(obj, awaited_by(obj, coroutine));
        if (obj == NULL) {
            Py_DECREF(user_code);
            return -1;
        }
    }
    Py_DECREF(obj);
    *lasti = PyLong_FromLong(user_lasti);
    if (*lasti == NULL) {
        Py_DECREF(user_code);
        return -1;
    }
    *code = user_code;
    *await_code = Py_NewRef(Py_None);
    *await_arg = Py_NewRef(Py_None);
    return 0;
error:
    Py_DECREF(obj);
    Py_DECREF(user_code);
    return -1;
}

/* The common case, as proxy.py writes it: the user's coroutine awaits a known library call. */
static int
describe_fast(CoroProxy *self, PyObject *yielded, PyObject **code, PyObject **lasti,
              PyObject **await_code, PyObject **await_arg)
{
    PyObject *coro = self->coro;
    int offset = -1;
    int finished = gen_lasti(self, coro, 1, &offset);
    if (finished != 0) {
        return finished < 0 ? -1 : describe_walk(self, code, lasti, await_code, await_arg);
    }
    PyObject *awaited = awaited_by(coro, 1);
    if (awaited == NULL) {
        return -1;
    }
    if (!PyCoro_CheckExact(awaited)) {
        Py_DECREF(awaited);
        *code = Py_NewRef(self->code);
        *lasti = PyLong_FromLong(offset);
        *await_code = Py_NewRef(Py_None);
        *await_arg = Py_NewRef(Py_None);
        return *lasti == NULL ? -1 : 0;
    }
    PyObject *awaited_code = code_of(awaited, 1);
    if (awaited_code == NULL) {
        Py_DECREF(awaited);
        return -1;
    }
    PyObject *name = code_kind(awaited_code); /* borrowed */
    if (name == NULL || name == Py_True) { /* the user's own code below: walk the chain */
        Py_DECREF(awaited_code);
        Py_DECREF(awaited);
        if (name == NULL) {
            return -1;
        }
        return describe_walk(self, code, lasti, await_code, await_arg);
    }
    PyObject *arg;
    if (!PyUnicode_Check(name) || PyUnicode_GET_LENGTH(name) == 0) {
        arg = Py_NewRef(Py_None);
    }
    else if (yielded == Py_None) {
        arg = PyLong_FromLong(0);
    }
    else {
        PyObject *awaited_frame = PyObject_GetAttr(awaited, str_cr_frame);
        arg = awaited_frame == NULL
                  ? NULL
                  : PyObject_CallFunctionObjArgs(argument_func, awaited_frame, name, NULL);
        Py_XDECREF(awaited_frame);
    }
    Py_DECREF(awaited);
    if (arg == NULL) {
        Py_DECREF(awaited_code);
        return -1;
    }
    *lasti = PyLong_FromLong(offset);
    if (*lasti == NULL) {
        Py_DECREF(awaited_code);
        Py_DECREF(arg);
        return -1;
    }
    *code = Py_NewRef(self->code);
    *await_code = awaited_code;
    *await_arg = arg;
    return 0;
}

/* A step that begins while another runs, or before its task's spawn is recorded (an eager
 * task's first step runs inside create_task): proxy.py's _send_nested() records it in order
 * around the ordinary step, which it runs through send(). */
static PySendResult
send_nested(CoroProxy *self, PyObject *value, PyObject **result)
{
    PyObject *yielded = PyObject_CallMethodOneArg((PyObject *)self, str_send_nested, value);
    if (yielded != NULL) {
        *result = yielded;
        return PYGEN_NEXT;
    }
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        *result = NULL;
        return PYGEN_ERROR;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
#endif
    PyObject *returned = NULL;
    if (exc != NULL && PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_StopIteration)) {
        returned = Py_XNewRef(((PyStopIterationObject *)exc)->value);
    }
    Py_XDECREF(exc);
    *result = returned == NULL ? Py_NewRef(Py_None) : returned;
    return PYGEN_RETURN;
}

static PySendResult
CoroProxy_am_send(CoroProxy *self, PyObject *value, PyObject **result)
{
    Recorder *tracer = (Recorder *)self->tracer;
    if (tracer == NULL || self->coro == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TracedCoroutine is not initialised");
        *result = NULL;
        return PYGEN_ERROR;
    }
    if (tracer->current != Py_None ||
        (tracer->pending_spawn != NULL && tracer->pending_spawn != Py_None)) {
        return send_nested(self, value, result);
    }
    Py_XSETREF(tracer->current, Py_NewRef(self->task_id));
    double started = monotonic();
    tracer->step_started = started;

    PyObject *yielded = NULL;
    PySendResult status = PyIter_Send(self->coro, value, &yielded);
    if (status != PYGEN_NEXT) {
        return step_finished(self, status, yielded, started, result);
    }
    double ended = monotonic();

    PyObject *code = NULL, *lasti = NULL, *await_code = NULL, *await_arg = NULL;
    int ok;
    if (!tracer->details) {
        code = Py_NewRef(Py_None);
        lasti = PyLong_FromLong(-1);
        await_code = Py_NewRef(Py_None);
        await_arg = Py_NewRef(Py_None);
        ok = lasti == NULL ? -1 : 0;
    }
    else if (self->code != Py_None && library_calls != NULL && is_user_code_func != NULL) {
        ok = describe_fast(self, yielded, &code, &lasti, &await_code, &await_arg);
    }
    else if (library_calls != NULL && is_user_code_func != NULL && argument_func != NULL) {
        ok = describe_walk(self, &code, &lasti, &await_code, &await_arg);
    }
    else {
        ok = describe_slow(self, &code, &lasti, &await_code, &await_arg);
    }
    if (ok < 0) { /* describing must never break the program: details off, as proxy.py does */
        PyErr_WriteUnraisable((PyObject *)self);
        tracer->details = 0;
        Py_XSETREF(code, Py_NewRef(Py_None));
        Py_XSETREF(lasti, PyLong_FromLong(-1));
        Py_XSETREF(await_code, Py_NewRef(Py_None));
        Py_XSETREF(await_arg, Py_NewRef(Py_None));
    }

    PyObject *what;
    if (yielded == Py_None) {
        what = yielded_nothing;
    }
    else if ((PyObject *)Py_TYPE(yielded) == future_type) {
        what = yielded_future;
    }
    else {
        what = NULL; /* a Task or another future type: the general path names it */
    }

    if (what == NULL || tracer->special || ended - started > tracer->stall_limit ||
        lasti == NULL) {
        PyObject *started_obj = PyFloat_FromDouble(started);
        PyObject *ended_obj = PyFloat_FromDouble(ended);
        if (started_obj != NULL && ended_obj != NULL && lasti != NULL) {
            PyObject *args[] = {self->tracer, self->task_id, started_obj, ended_obj, code,
                                lasti,        await_code,    await_arg,   yielded};
            PyObject *r = PyObject_VectorcallMethod(str_step_done, args,
                                                    9 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
            Py_XDECREF(r);
        }
        if (PyErr_Occurred()) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
        Py_XDECREF(started_obj);
        Py_XDECREF(ended_obj);
        Py_XDECREF(code);
        Py_XDECREF(lasti);
        Py_XDECREF(await_code);
        Py_XDECREF(await_arg);
        *result = yielded;
        return PYGEN_NEXT;
    }

    /* The fast path: (STEP, seq, ended, started, tid, code, lasti, await_code, await_arg,
     * what, before_sent), unboxed in the ring (or a tuple the GC does not track). */
    Py_XSETREF(tracer->current, Py_NewRef(Py_None));
    tracer->step_started = 0.0;
    int before_sent = tracer->before_sent;
    tracer->before_sent = 0;
    if (tracer->ring != NULL && Py_IS_TYPE(tracer->ring, &RingType) &&
        ((Ring *)tracer->ring)->slots != NULL && PyLong_CheckExact(lasti)) {
        int offset = (int)PyLong_AsLong(lasti);
        Py_DECREF(lasti);
        ring_push_step((Ring *)tracer->ring, tracer->seq++, ended, started, self->task_id, code,
                       offset, await_code, await_arg,
                       what == yielded_nothing ? yielded_nothing_value : yielded_future_value,
                       before_sent);
        *result = yielded;
        return PYGEN_NEXT;
    }
    PyObject *record = PyTuple_New(11);
    PyObject *seq = PyLong_FromLongLong(tracer->seq++);
    PyObject *ended_obj = PyFloat_FromDouble(ended);
    PyObject *started_obj = PyFloat_FromDouble(started);
    if (record == NULL || seq == NULL || ended_obj == NULL || started_obj == NULL ||
        tracer->append == NULL) {
        Py_XDECREF(record);
        Py_XDECREF(seq);
        Py_XDECREF(ended_obj);
        Py_XDECREF(started_obj);
        Py_DECREF(code);
        Py_DECREF(lasti);
        Py_DECREF(await_code);
        Py_DECREF(await_arg);
        if (PyErr_Occurred()) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
        *result = yielded;
        return PYGEN_NEXT;
    }
    PyTuple_SET_ITEM(record, 0, Py_NewRef(step_code));
    PyTuple_SET_ITEM(record, 1, seq);
    PyTuple_SET_ITEM(record, 2, ended_obj);
    PyTuple_SET_ITEM(record, 3, started_obj);
    PyTuple_SET_ITEM(record, 4, Py_NewRef(self->task_id));
    PyTuple_SET_ITEM(record, 5, code);
    PyTuple_SET_ITEM(record, 6, lasti);
    PyTuple_SET_ITEM(record, 7, await_code);
    PyTuple_SET_ITEM(record, 8, await_arg);
    PyTuple_SET_ITEM(record, 9, Py_NewRef(what));
    PyTuple_SET_ITEM(record, 10, Py_NewRef(before_sent ? Py_True : Py_False));
    PyObject_GC_UnTrack(record);
    PyObject *r = PyObject_CallOneArg(tracer->append, record);
    Py_DECREF(record);
    if (r == NULL) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    Py_XDECREF(r);
    *result = yielded;
    return PYGEN_NEXT;
}

static PyObject *
CoroProxy_send(CoroProxy *self, PyObject *value)
{
    PyObject *result = NULL;
    PySendResult status = CoroProxy_am_send(self, value, &result);
    if (status == PYGEN_NEXT) {
        return result;
    }
    if (status == PYGEN_RETURN) {
        if (result == Py_None) {
            PyErr_SetNone(PyExc_StopIteration);
        }
        else {
            PyObject *exc = PyObject_CallOneArg(PyExc_StopIteration, result);
            if (exc != NULL) {
                PyErr_SetObject(PyExc_StopIteration, exc);
                Py_DECREF(exc);
            }
        }
        Py_DECREF(result);
    }
    return NULL;
}

/* throw() in C, so that no frame of loopviz's shows in the traceback of an exception thrown
 * into a task (a cancellation) and passed on: the program's tracebacks stay its own. Rare, so
 * the bookkeeping is the Python proxy's (step_failed, or _throw_done for a step that goes on). */
static PyObject *
CoroProxy_throw(CoroProxy *self, PyObject *const *args, Py_ssize_t nargs)
{
    Recorder *tracer = (Recorder *)self->tracer;
    if (tracer == NULL || self->coro == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TracedCoroutine is not initialised");
        return NULL;
    }
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return NULL;
    }
    Py_XSETREF(tracer->current, Py_NewRef(self->task_id));
    double started = monotonic();
    tracer->step_started = started;
    PyObject *stack[4] = {self->coro, NULL, NULL, NULL};
    for (Py_ssize_t i = 0; i < nargs; i++) {
        stack[i + 1] = args[i];
    }
    PyObject *yielded = PyObject_VectorcallMethod(
        str_throw, stack, (size_t)(nargs + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (yielded == NULL) {
        PyObject *result = NULL;
        step_finished(self, PYGEN_ERROR, NULL, started, &result);
        return NULL;
    }
    PyObject *started_obj = PyFloat_FromDouble(started);
    if (started_obj != NULL) {
        PyObject *call[] = {(PyObject *)self, yielded, started_obj};
        PyObject *r = PyObject_VectorcallMethod(str_throw_done, call,
                                                3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_XDECREF(r);
        Py_DECREF(started_obj);
    }
    if (PyErr_Occurred()) { /* tracing never breaks the program */
        PyErr_WriteUnraisable((PyObject *)self);
    }
    return yielded;
}

/* Introspection (cr_frame, __qualname__...) reads the user's coroutine. */
static PyObject *
CoroProxy_getattro(CoroProxy *self, PyObject *name)
{
    PyObject *found = PyObject_GenericGetAttr((PyObject *)self, name);
    if (found != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError) || self->coro == NULL) {
        return found;
    }
    if (PyUnicode_Check(name) && PyUnicode_Compare(name, str_coro_name) == 0) {
        return NULL;
    }
    PyErr_Clear();
    return PyObject_GetAttr(self->coro, name);
}

static PyMethodDef CoroProxy_methods[] = {
    {"send", (PyCFunction)CoroProxy_send, METH_O, "Run the coroutine's next step."},
    {"throw", (PyCFunction)(void (*)(void))CoroProxy_throw, METH_FASTCALL,
     "Throw an exception into the coroutine (a cancellation): a step, recorded."},
    {NULL}};

static PyMemberDef CoroProxy_members[] = {
    {"_coro", T_OBJECT, offsetof(CoroProxy, coro), READONLY, "the user's coroutine"},
    {"_tracer", T_OBJECT, offsetof(CoroProxy, tracer), READONLY, "the loop's tracer"},
    {"task_id", T_OBJECT, offsetof(CoroProxy, task_id), READONLY, "the task's id in events"},
    {"_code", T_OBJECT, offsetof(CoroProxy, code), READONLY,
     "the user's coroutine code, when the inline description applies"},
    {NULL}};

static PyAsyncMethods CoroProxy_as_async = {
    .am_send = (sendfunc)CoroProxy_am_send,
};

static PyTypeObject CoroProxyType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loopviz.trace._speedups.CoroProxy",
    .tp_doc = "Forwards a task's coroutine, recording where each step starts and ends.",
    .tp_basicsize = sizeof(CoroProxy),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = CoroProxy_new,
    .tp_init = (initproc)CoroProxy_init,
    .tp_traverse = (traverseproc)CoroProxy_traverse,
    .tp_clear = (inquiry)CoroProxy_clear,
    .tp_dealloc = (destructor)CoroProxy_dealloc,
    .tp_getattro = (getattrofunc)CoroProxy_getattro,
    .tp_as_async = &CoroProxy_as_async,
    .tp_methods = CoroProxy_methods,
    .tp_members = CoroProxy_members,
};

#define MAX_ARGS 8 /* arguments a forwarded call takes at most (stock ones take 1 to 3) */

/* -- create_task ---------------------------------------------------------------------------- */

/* loop.py's PySpawner.create_task in C: a task made every few microseconds (a server's
 * connection handlers) costs little more than on the stock loop. */

/* The name asyncio.create_task() or TaskGroup.create_task() (3.11) gives the task only after
 * loop.create_task() returns: read it from the caller's frame. New reference or None. */
static PyObject *
name_given_here(void)
{
    if (naming_callers == NULL) {
        return Py_NewRef(Py_None);
    }
    PyObject *code = NULL; /* the running code's, i.e. create_task's caller's */
#if HAVE_FRAMES_IN_PLACE
    if (frames_in_place) {
        _PyInterpreterFrame *frame = complete_frame(thread_frame());
        code = frame == NULL ? NULL : Py_NewRef(frame_code_of(frame));
    }
    else
#endif
    {
        PyFrameObject *frame = PyEval_GetFrame(); /* borrowed */
        code = frame == NULL ? NULL : (PyObject *)PyFrame_GetCode(frame);
    }
    int naming = 0;
    for (Py_ssize_t i = 0; code != NULL && i < PyTuple_GET_SIZE(naming_callers); i++) {
        naming |= PyTuple_GET_ITEM(naming_callers, i) == code;
    }
    Py_XDECREF(code);
    if (!naming) {
        return Py_NewRef(Py_None);
    }
    PyObject *locals = PyObject_GetAttr((PyObject *)PyEval_GetFrame(), str_f_locals);
    if (locals == NULL) {
        return NULL;
    }
    PyObject *name = PyMapping_Check(locals) ? PyObject_GetItem(locals, str_name) : NULL;
    Py_DECREF(locals);
    if (name == NULL) {
        PyErr_Clear();
        return Py_NewRef(Py_None);
    }
    if (name == Py_None) {
        return name;
    }
    PyObject *text = PyObject_Str(name);
    Py_DECREF(name);
    return text;
}

/* The coroutine wrapped for tracing: the C proxy is filled in directly (no argument parsing),
 * any other proxy type is called as proxy_type(coro, tracer, task_id, code). */
static PyObject *
make_proxy(PyObject *proxy_type, PyObject *coro, PyObject *tracer, PyObject *task_id,
           PyObject *code)
{
    if (PyType_Check(proxy_type) &&
        PyType_IsSubtype((PyTypeObject *)proxy_type, &CoroProxyType)) {
        CoroProxy *proxy = proxy_alloc((PyTypeObject *)proxy_type);
        if (proxy == NULL) {
            return NULL;
        }
        proxy->coro = Py_NewRef(coro);
        proxy->tracer = Py_NewRef(tracer);
        proxy->task_id = Py_NewRef(task_id);
        proxy->code = Py_NewRef(code);
        return (PyObject *)proxy;
    }
    return PyObject_CallFunctionObjArgs(proxy_type, coro, tracer, task_id, code, NULL);
}

/* Record the spawn; failing here must not fail the program, which already has its task. */
static void
record_spawn(Recorder *tracer, PyObject *task, PyObject *task_id, PyObject *coro_code)
{
    PyObject *site_code = NULL, *site_lasti = NULL;
    int lasti;
    PyObject *name = PyObject_CallMethodNoArgs(task, str_get_name);
    Ring *ring = recorder_ring(tracer);
    if (name != NULL && spawn_site(&site_code, &lasti) == 0) {
        if (ring != NULL) { /* unboxed, as record() would write it */
            if (open_step(tracer) == 0) {
                ring_push_spawn(ring, tracer->seq++, monotonic(), task_id, tracer->current,
                                name, coro_code, site_code, lasti);
            }
        }
        else if ((site_lasti = PyLong_FromLong(lasti)) != NULL) {
            PyObject *parent = Py_NewRef(tracer->current);
            PyObject *args[] = {spawn_code, task_id, parent, name, coro_code, site_code,
                                site_lasti};
            PyObject *r = Recorder_record(tracer, args, 7);
            Py_XDECREF(r);
            Py_DECREF(parent);
        }
    }
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(task);
    }
    Py_XDECREF(name);
    Py_XDECREF(site_code);
    Py_XDECREF(site_lasti);
}

/* Whether a task made by asyncio's create_task surely starts after it returns: no task factory
 * (which may start it eagerly) and no eager_start keyword (3.14). Eager tasks take the Python
 * path, which records the spawn before their first step. 0 on error too (the Python path then
 * meets the error the ordinary way). */
static int
may_start_later(PyObject *loop, PyObject *kwnames)
{
    for (Py_ssize_t i = 0; kwnames != NULL && i < PyTuple_GET_SIZE(kwnames); i++) {
        if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), "eager_start") == 0) {
            return 0;
        }
    }
    if (str_task_factory_attr == NULL) {
        return 0;
    }
    PyObject *factory = PyObject_GetAttr(loop, str_task_factory_attr);
    if (factory == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(factory);
    return factory == Py_None;
}

/* The loop create_task last found a Recorder for (a weak reference) and that Recorder
 * (borrowed: the loop keeps its tracer alive, on its selector or in _PARTS after close, and
 * never changes it). A server spawns its tasks on one loop, so the two attribute reads below
 * are made once per loop, not once per task (about 400 instructions a spawn). */
static PyObject *spawn_loop_ref = NULL;
static PyObject *spawn_tracer = NULL;

/* Whether the weak reference ``ref`` still points at ``obj``. */
static int
refers_to(PyObject *ref, PyObject *obj)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *target = NULL;
    if (PyWeakref_GetRef(ref, &target) < 0) {
        PyErr_Clear();
        return 0;
    }
    Py_XDECREF(target); /* only compared: obj itself is alive */
    return target == obj;
#else
    return PyWeakref_GET_OBJECT(ref) == obj;
#endif
}

/* The loop's tracer (new reference), kept by its selector: two instance attribute reads. The
 * loop's own ``tracer`` property finds it the same way, but a property call costs more. */
static PyObject *
loop_tracer_uncached(PyObject *loop)
{
    if (str_selector_attr == NULL) {
        return PyObject_GetAttr(loop, str_tracer);
    }
    PyObject *selector = PyObject_GetAttr(loop, str_selector_attr);
    if (selector == NULL) {
        return NULL;
    }
    PyObject *tracer = selector == Py_None ? PyObject_GetAttr(loop, str_tracer)
                                           : PyObject_GetAttr(selector, str_tracer);
    Py_DECREF(selector);
    return tracer;
}

/* loop_tracer_uncached(), remembered for the last loop whose tracer is a Recorder. */
static PyObject *
loop_tracer(PyObject *loop)
{
    if (spawn_loop_ref != NULL && refers_to(spawn_loop_ref, loop)) {
        return Py_NewRef(spawn_tracer);
    }
    PyObject *tracer = loop_tracer_uncached(loop);
    if (tracer != NULL && PyObject_TypeCheck(tracer, &RecorderType)) {
        PyObject *ref = PyWeakref_NewRef(loop, NULL);
        if (ref == NULL) {
            PyErr_Clear(); /* a loop without weak references: found the slow way each time */
        }
        else {
            Py_XSETREF(spawn_loop_ref, ref);
            spawn_tracer = tracer;
        }
    }
    return tracer;
}

static PyObject *
create_task(PyObject *loop, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *tracer = NULL;
    PyObject *stack[MAX_ARGS + 3];
    if (nargs == 1 && nkw <= MAX_ARGS && PyCoro_CheckExact(args[0]) &&
        base_create_task != NULL && spawn_code != NULL && may_start_later(loop, kwnames)) {
        tracer = loop_tracer(loop);
        if (tracer == NULL) {
            return NULL;
        }
        if (!PyObject_TypeCheck(tracer, &RecorderType)) {
            Py_CLEAR(tracer);
        }
    }
    if (tracer == NULL) { /* not a native coroutine, or not set up: the Python way */
        PyObject *method = PyObject_GetAttr(loop, str_create_other);
        if (method == NULL) {
            return NULL;
        }
        PyObject *task = PyObject_Vectorcall(method, args, nargs, kwnames);
        Py_DECREF(method);
        return task;
    }
    PyObject *coro = args[0];
    Py_ssize_t name_at = -1;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        if (PyUnicode_Compare(PyTuple_GET_ITEM(kwnames, i), str_name) == 0) {
            name_at = i;
        }
    }
    PyObject *coro_code = NULL, *given = NULL, *task_id = NULL, *proxy_type = NULL;
    PyObject *proxy = NULL, *call_names = NULL, *task = NULL;

    coro_code = code_of(coro, 1);
    if (coro_code == NULL) {
        goto done;
    }
    PyObject *kind = code_kind(coro_code);
    if (kind == NULL) {
        goto done;
    }
    if (name_at < 0 || args[1 + name_at] == Py_None) {
        given = name_given_here();
        if (given == NULL) {
            goto done;
        }
    }
    task_id = PyLong_FromLongLong(++((Recorder *)tracer)->task_ids);
    proxy_type = Py_XNewRef(((Recorder *)tracer)->proxy_type);
    if (task_id == NULL || proxy_type == NULL) {
        goto done;
    }
    proxy = make_proxy(proxy_type, coro, tracer, task_id, kind == Py_True ? coro_code : Py_None);
    if (proxy == NULL) {
        goto done;
    }
    /* asyncio's create_task(loop, proxy, **keywords), with the name found for it */
    stack[0] = loop;
    stack[1] = proxy;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        stack[2 + i] = args[1 + i];
    }
    Py_ssize_t ncall = nkw;
    call_names = Py_XNewRef(kwnames);
    if (given != NULL && given != Py_None) {
        if (name_at >= 0) {
            stack[2 + name_at] = given;
        }
        else {
            PyObject *names = PyTuple_New(nkw + 1);
            if (names == NULL) {
                goto done;
            }
            for (Py_ssize_t i = 0; i < nkw; i++) {
                PyTuple_SET_ITEM(names, i, Py_NewRef(PyTuple_GET_ITEM(kwnames, i)));
            }
            PyTuple_SET_ITEM(names, nkw, Py_NewRef(str_name));
            Py_XSETREF(call_names, names);
            stack[2 + nkw] = given;
            ncall++;
        }
    }
    task = PyObject_Vectorcall(base_create_task, stack, 2, ncall ? call_names : NULL);
    if (task != NULL) {
        record_spawn((Recorder *)tracer, task, task_id, coro_code);
    }
done:
    Py_DECREF(tracer);
    Py_XDECREF(coro_code);
    Py_XDECREF(given);
    Py_XDECREF(task_id);
    Py_XDECREF(proxy_type);
    Py_XDECREF(proxy);
    Py_XDECREF(call_names);
    return task;
}

/* create_task as a method: a descriptor flagged like a function's, so ``loop.create_task(c)``
 * calls it with the loop first and allocates no bound method. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
} SpawnMethod;

static PyObject *
SpawnMethod_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                       PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "create_task() needs the loop");
        return NULL;
    }
    return create_task(args[0], args + 1, nargs - 1, kwnames);
}

static PyObject *
SpawnMethod_descr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, obj);
}

static PyObject *
SpawnMethod_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    SpawnMethod *self = (SpawnMethod *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->vectorcall = SpawnMethod_vectorcall;
    }
    return (PyObject *)self;
}

static PyTypeObject SpawnMethodType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loopviz.trace._speedups.SpawnMethod",
    .tp_doc = "create_task(loop, coro, *, name=None, context=None): loop.PySpawner.create_task "
              "in C; put an instance in a loop class.",
    .tp_basicsize = sizeof(SpawnMethod),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_METHOD_DESCRIPTOR | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(SpawnMethod, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = SpawnMethod_descr_get,
    .tp_new = SpawnMethod_new,
};

/* -- PollWatch ------------------------------------------------------------------------------ */

/* Stands in for the epoll (or poll) object of a selector from the selectors module: each
 * register/modify/unregister is passed on, then recorded (FD_WATCH fd mask, FD_UNWATCH fd),
 * so watching an fd costs one C call more than on the stock loop. The selector calls modify
 * only when the interest changed. Masks are translated back to selectors' READ=1 / WRITE=2.
 *
 * The poller's methods are bound once, and attribute lookup is the generic one, so the
 * selector's ``self._selector.register(...)`` finds a method without allocating one. */
#define MAX_INTERNAL 8 /* the loop's own fds (a self-pipe end) kept as C ints */

/* The fds of a small set of ints as C longs (at most MAX_INTERNAL): their count, or -1 when
 * the set is larger or holds something else (then PySet_Contains answers). */
static int
small_fd_set(PyObject *set, long *fds)
{
    if (PySet_GET_SIZE(set) > MAX_INTERNAL) {
        return -1;
    }
    PyObject *iterator = PyObject_GetIter(set);
    if (iterator == NULL) {
        PyErr_Clear();
        return -1;
    }
    int count = 0;
    PyObject *item;
    while ((item = PyIter_Next(iterator)) != NULL) {
        long number = PyLong_Check(item) ? PyLong_AsLong(item) : -1;
        Py_DECREF(item);
        if (number == -1 || count >= MAX_INTERNAL) {
            count = -1;
            break;
        }
        fds[count++] = number;
    }
    Py_DECREF(iterator);
    PyErr_Clear();
    return count;
}

typedef struct {
    PyObject_HEAD
    PyObject *poller;   /* the real epoll/poll object */
    PyObject *calls[4]; /* its register, modify, unregister and poll, bound */
    PyObject *tracer;   /* a Recorder */
    PyObject *watch;    /* records.FD_WATCH */
    PyObject *unwatch;  /* records.FD_UNWATCH */
    PyObject *internal; /* fds never shown (the loop's self-pipe): a frozenset, or None */
    long internal_fds[MAX_INTERNAL];
    int n_internal; /* -1: too many for the array, ask the set */
    long read_bits, write_bits;
    char recording;
} PollWatch;

enum { CALL_REGISTER, CALL_MODIFY, CALL_UNREGISTER, CALL_POLL };

static int
PollWatch_traverse(PollWatch *self, visitproc visit, void *arg)
{
    Py_VISIT(self->poller);
    for (int i = 0; i < 4; i++) {
        Py_VISIT(self->calls[i]);
    }
    Py_VISIT(self->tracer);
    Py_VISIT(self->internal);
    return 0;
}

static int
PollWatch_clear(PollWatch *self)
{
    Py_CLEAR(self->poller);
    for (int i = 0; i < 4; i++) {
        Py_CLEAR(self->calls[i]);
    }
    Py_CLEAR(self->tracer);
    Py_CLEAR(self->watch);
    Py_CLEAR(self->unwatch);
    Py_CLEAR(self->internal);
    return 0;
}

static void
PollWatch_dealloc(PollWatch *self)
{
    PyObject_GC_UnTrack(self);
    PollWatch_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
PollWatch_init(PollWatch *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"poller", "tracer", "watch", "unwatch", "read_bits", "write_bits",
                             NULL};
    PyObject *poller, *tracer, *watch, *unwatch;
    long read_bits, write_bits;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!OOll", kwlist, &poller, &RecorderType,
                                     &tracer, &watch, &unwatch, &read_bits, &write_bits)) {
        return -1;
    }
    PyObject *names[] = {str_register, str_modify, str_unregister, str_poll};
    for (int i = 0; i < 4; i++) {
        PyObject *bound = PyObject_GetAttr(poller, names[i]);
        if (bound == NULL) {
            return -1;
        }
        Py_XSETREF(self->calls[i], bound);
    }
    Py_XSETREF(self->poller, Py_NewRef(poller));
    Py_XSETREF(self->tracer, Py_NewRef(tracer));
    Py_XSETREF(self->watch, Py_NewRef(watch));
    Py_XSETREF(self->unwatch, Py_NewRef(unwatch));
    Py_XSETREF(self->internal, Py_NewRef(Py_None));
    self->n_internal = 0;
    self->read_bits = read_bits;
    self->write_bits = write_bits;
    self->recording = 0;
    return 0;
}

/* Call the poller's bound method with the same arguments. */
static PyObject *
forward(PollWatch *self, int which, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (self->calls[which] == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "PollWatch is not initialised");
        return NULL;
    }
    return PyObject_Vectorcall(self->calls[which], args, nargs, kwnames);
}

/* Whether a change to this fd is shown: recording, and not one of the loop's own fds. */
static int
shown(PollWatch *self, PyObject *fd)
{
    if (!self->recording) {
        return 0;
    }
    if (self->n_internal < 0) {
        int hidden = PySet_Contains(self->internal, fd);
        if (hidden < 0) {
            PyErr_Clear();
        }
        return hidden == 0;
    }
    if (self->n_internal > 0) {
        long number = PyLong_AsLong(fd);
        if (number == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 1;
        }
        for (int i = 0; i < self->n_internal; i++) {
            if (self->internal_fds[i] == number) {
                return 0;
            }
        }
    }
    return 1;
}

/* FD_WATCH (mask >= 0) or FD_UNWATCH (mask < 0) for fd: unboxed into the ring when there is
 * one, else the tuple record() writes. Tracing never breaks the program: errors are reported
 * as unraisable. */
static void
record_fd(PollWatch *self, PyObject *fd, long mask)
{
    Recorder *tracer = (Recorder *)self->tracer;
    int number = (int)PyLong_AsLong(fd);
    if (number == -1 && PyErr_Occurred()) {
        PyErr_WriteUnraisable((PyObject *)self);
        return;
    }
    Ring *ring = recorder_ring(tracer);
    if (ring != NULL && fd_watch_code != NULL && fd_unwatch_code != NULL) {
        if (open_step(tracer) < 0) {
            PyErr_WriteUnraisable((PyObject *)self);
            return;
        }
        int events = (mask & self->read_bits ? 1 : 0) | (mask & self->write_bits ? 2 : 0);
        ring_push(ring, mask < 0 ? SLOT_FD_UNWATCH : SLOT_FD_WATCH, tracer->seq++, monotonic(),
                  0.0, NULL, number, events, NULL, NULL);
        return;
    }
    PyObject *r;
    if (mask < 0) {
        PyObject *args[] = {self->unwatch, fd};
        r = Recorder_record(tracer, args, 2);
    }
    else {
        PyObject *events =
            PyLong_FromLong((mask & self->read_bits ? 1 : 0) | (mask & self->write_bits ? 2 : 0));
        if (events == NULL) {
            PyErr_WriteUnraisable((PyObject *)self);
            return;
        }
        PyObject *args[] = {self->watch, fd, events};
        r = Recorder_record(tracer, args, 3);
        Py_DECREF(events);
    }
    if (r == NULL) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    Py_XDECREF(r);
}

static PyObject *
watch_changed(PollWatch *self, int which, PyObject *const *args, Py_ssize_t nargs,
              PyObject *kwnames)
{
    PyObject *r = forward(self, which, args, nargs, kwnames);
    if (r != NULL && nargs == 2 && shown(self, args[0])) {
        long mask = PyLong_AsLong(args[1]);
        if (mask == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return r;
        }
        record_fd(self, args[0], mask < 0 ? 0 : mask);
    }
    return r;
}

static PyObject *
PollWatch_register(PollWatch *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return watch_changed(self, CALL_REGISTER, args, nargs, kwnames);
}

static PyObject *
PollWatch_modify(PollWatch *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return watch_changed(self, CALL_MODIFY, args, nargs, kwnames);
}

/* The selector drops the key even when the kernel refuses (the fd was closed already): so is
 * the watch, in the events too. */
static PyObject *
PollWatch_unregister(PollWatch *self, PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    PyObject *r = forward(self, CALL_UNREGISTER, args, nargs, kwnames);
    if (nargs == 1 && (r != NULL || PyErr_ExceptionMatches(PyExc_OSError)) &&
        shown(self, args[0])) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        record_fd(self, args[0], -1);
        PyErr_Restore(type, value, tb);
    }
    return r;
}

static PyObject *
PollWatch_poll(PollWatch *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return forward(self, CALL_POLL, args, nargs, kwnames);
}

static PyObject *
PollWatch_close(PollWatch *self, PyObject *Py_UNUSED(ignored))
{
    return PyObject_CallMethodNoArgs(self->poller, str_close);
}

static PyObject *
PollWatch_fileno(PollWatch *self, PyObject *Py_UNUSED(ignored))
{
    return PyObject_CallMethodNoArgs(self->poller, str_fileno);
}

static PyObject *
PollWatch_get_closed(PollWatch *self, void *Py_UNUSED(closure))
{
    return PyObject_GetAttr(self->poller, str_closed);
}

static PyObject *
PollWatch_get_internal(PollWatch *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->internal != NULL ? self->internal : Py_None);
}

/* The fds to hide: a set (kept, and copied into the C array when it holds few ints), or None. */
static int
PollWatch_set_internal(PollWatch *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL || (value != Py_None && !PyAnySet_Check(value))) {
        PyErr_SetString(PyExc_TypeError, "internal must be a set of fds, or None");
        return -1;
    }
    int count = value == Py_None ? 0 : small_fd_set(value, self->internal_fds);
    self->n_internal = count;
    Py_XSETREF(self->internal, Py_NewRef(value));
    return 0;
}

static PyMethodDef PollWatch_methods[] = {
    {"register", (PyCFunction)(void (*)(void))PollWatch_register, METH_FASTCALL | METH_KEYWORDS,
     "Watch an fd; recorded as FD_WATCH."},
    {"modify", (PyCFunction)(void (*)(void))PollWatch_modify, METH_FASTCALL | METH_KEYWORDS,
     "Change an fd's interest; recorded as FD_WATCH."},
    {"unregister", (PyCFunction)(void (*)(void))PollWatch_unregister,
     METH_FASTCALL | METH_KEYWORDS, "Stop watching an fd; recorded as FD_UNWATCH."},
    {"poll", (PyCFunction)(void (*)(void))PollWatch_poll, METH_FASTCALL | METH_KEYWORDS,
     "The poller's poll()."},
    {"close", (PyCFunction)PollWatch_close, METH_NOARGS, "Close the poller."},
    {"fileno", (PyCFunction)PollWatch_fileno, METH_NOARGS, "The poller's fd."},
    {NULL}};

static PyMemberDef PollWatch_members[] = {
    {"poller", T_OBJECT, offsetof(PollWatch, poller), READONLY, "the real epoll/poll object"},
    {"recording", T_BOOL, offsetof(PollWatch, recording), 0, "record changes from now on"},
    {NULL}};

static PyGetSetDef PollWatch_getset[] = {
    {"closed", (getter)PollWatch_get_closed, NULL, "the poller's closed", NULL},
    {"internal", (getter)PollWatch_get_internal, (setter)PollWatch_set_internal,
     "a frozenset of fds whose changes are never recorded", NULL},
    {NULL}};

static PyTypeObject PollWatchType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loopviz.trace._speedups.PollWatch",
    .tp_doc = "A selector's poll object that records each change of what it watches.",
    .tp_basicsize = sizeof(PollWatch),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)PollWatch_init,
    .tp_traverse = (traverseproc)PollWatch_traverse,
    .tp_clear = (inquiry)PollWatch_clear,
    .tp_dealloc = (destructor)PollWatch_dealloc,
    .tp_methods = PollWatch_methods,
    .tp_members = PollWatch_members,
    .tp_getset = PollWatch_getset,
};

/* -- module ------------------------------------------------------------------------------- */

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"library_calls", "is_user_code", "future_type", "argument",
                             "current_task", "step", "before_step", "exit", "fd_watch",
                             "fd_unwatch", "yielded_nothing", "yielded_future", NULL};
    PyObject *calls, *is_user, *future, *argument, *current_task, *step, *before, *exit, *watch,
        *unwatch, *nothing, *fut;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOOOOOOOOOO", kwlist, &PyDict_Type, &calls,
                                     &is_user, &future, &argument, &current_task, &step, &before,
                                     &exit, &watch, &unwatch, &nothing, &fut)) {
        return NULL;
    }
    Py_XSETREF(fd_watch_code, Py_NewRef(watch));
    Py_XSETREF(fd_unwatch_code, Py_NewRef(unwatch));
    Py_XSETREF(is_user_code_func, Py_NewRef(is_user));
    Py_XSETREF(current_task_func, Py_NewRef(current_task));
    Py_XSETREF(before_step_code, Py_NewRef(before));
    Py_XSETREF(exit_code, Py_NewRef(exit));
    Py_XSETREF(library_calls, Py_NewRef(calls));
    Py_XSETREF(future_type, Py_NewRef(future));
    Py_XSETREF(argument_func, Py_NewRef(argument));
    Py_XSETREF(step_code, Py_NewRef(step));
    long nothing_value = PyLong_AsLong(nothing), future_value = PyLong_AsLong(fut);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_XSETREF(yielded_nothing, Py_NewRef(nothing));
    Py_XSETREF(yielded_future, Py_NewRef(fut));
    yielded_nothing_value = (int)nothing_value;
    yielded_future_value = (int)future_value;
    Py_RETURN_NONE;
}

/* Whether instances of ``type`` are exactly a CoroProxy in memory, with nothing dealloc must
 * do beyond CoroProxy's (no dict, no weak references, no finalizer): then a freed one can be
 * kept and reused (proxy_alloc). */
static int
plain_proxy_layout(PyTypeObject *type)
{
#ifdef Py_TPFLAGS_MANAGED_WEAKREF
    if (type->tp_flags & Py_TPFLAGS_MANAGED_WEAKREF) {
        return 0;
    }
#endif
    return type->tp_basicsize == (Py_ssize_t)sizeof(CoroProxy) && type->tp_itemsize == 0 &&
           type->tp_dictoffset == 0 && type->tp_weaklistoffset == 0 &&
           !(type->tp_flags & Py_TPFLAGS_MANAGED_DICT) && type->tp_finalize == NULL &&
           type->tp_del == NULL;
}

/* CPython (3.11 at least) does not inherit am_send into a Python subclass, so the C task
 * would look up and call the ``send`` method instead. Give the subclass the slot: a heap type
 * owns its PyAsyncMethods, and its layout starts with CoroProxy's. The first such class
 * (TracedCoroutine, the one the loop makes proxies of) also gets its freed proxies reused,
 * when its instances are plain CoroProxy memory. */
static PyObject *
inherit_send(PyObject *module, PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &CoroProxyType) ||
        !(((PyTypeObject *)cls)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        PyErr_SetString(PyExc_TypeError, "inherit_send() needs a Python subclass of CoroProxy");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)cls;
    if (type->tp_as_async == NULL) {
        PyErr_SetString(PyExc_TypeError, "the subclass has no async slots");
        return NULL;
    }
    type->tp_as_async->am_send = (sendfunc)CoroProxy_am_send;
    PyType_Modified(type);
    if (proxy_freelist_type == NULL && plain_proxy_layout(type)) {
        proxy_freelist_type = (PyTypeObject *)Py_NewRef(type);
    }
    Py_RETURN_NONE;
}

/* The (fd, mask) pairs ready_fds hands out, made once per fd and mask (selectors' READ=1,
 * WRITE=2, both=3) for the fds below READY_PAIR_FDS: an iteration of a busy server reports
 * hundreds, and each new pair, kept in the ring until drained, was a GC allocation that
 * brought the next collection closer (1,000 a W3 run). A pair is immutable: sharing one
 * changes no record. */
#define READY_PAIR_FDS 1024
static PyObject *ready_pairs[READY_PAIR_FDS][3];

/* The ints 1, 2 and 3, the masks a pair is shared for: CPython keeps one object for each small
 * int, so a mask is told by identity. */
static PyObject *pair_masks[3];

/* The pair (fd, mask) (new reference): a shared one where it can be, else a new one.
 * ``number`` is the fd as a C long when the caller read it already, else -1. */
static PyObject *
ready_pair(PyObject *fd, long number, PyObject *mask)
{
    int events = mask == pair_masks[0] ? 1 : mask == pair_masks[1] ? 2 : mask == pair_masks[2] ? 3 : 0;
    int shared = events > 0 && number >= 0 && number < READY_PAIR_FDS;
    if (shared && ready_pairs[number][events - 1] != NULL) {
        return Py_NewRef(ready_pairs[number][events - 1]);
    }
    PyObject *pair = PyTuple_Pack(2, fd, mask);
    if (pair == NULL) {
        return NULL;
    }
    PyObject_GC_UnTrack(pair); /* two ints: no cycles */
    if (shared) {
        ready_pairs[number][events - 1] = Py_NewRef(pair);
    }
    return pair;
}

/* ready_fds(events, internal): ((fd, mask), ...) for a selector's select() result
 * [(SelectorKey, mask), ...], leaving out the loop's own fds: what after_io_wait shows. */
static PyObject *
ready_fds(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0]) || !PyAnySet_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "ready_fds(events: list, internal: frozenset)");
        return NULL;
    }
    PyObject *events = args[0], *internal = args[1];
    long fds[MAX_INTERNAL];
    int n_fds = small_fd_set(internal, fds);
    Py_ssize_t n = PyList_GET_SIZE(events), kept = 0;
    for (int fill = 0; fill < 2; fill++) { /* count what is kept, then fill a tuple that size */
        PyObject *ready = fill ? PyTuple_New(kept) : NULL;
        if (fill && ready == NULL) {
            return NULL;
        }
        Py_ssize_t at = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *event = PyList_GET_ITEM(events, i);
            if (!PyTuple_Check(event) || PyTuple_GET_SIZE(event) != 2 ||
                !PyTuple_Check(PyTuple_GET_ITEM(event, 0)) ||
                PyTuple_GET_SIZE(PyTuple_GET_ITEM(event, 0)) < 2) {
                Py_XDECREF(ready);
                PyErr_SetString(PyExc_TypeError, "events must be (SelectorKey, mask) pairs");
                return NULL;
            }
            PyObject *fd = PyTuple_GET_ITEM(PyTuple_GET_ITEM(event, 0), 1); /* key.fd */
            int hidden = 0;
            long number = -1;
            if (n_fds < 0 || !PyLong_CheckExact(fd)) {
                hidden = PySet_Contains(internal, fd);
            }
            else {
                number = PyLong_AsLong(fd);
                if (number == -1 && PyErr_Occurred()) {
                    PyErr_Clear(); /* too large for a C long: no fd of ours */
                }
                for (int j = 0; j < n_fds; j++) {
                    hidden |= fds[j] == number;
                }
            }
            if (hidden < 0) {
                Py_XDECREF(ready);
                return NULL;
            }
            if (hidden) {
                continue;
            }
            if (!fill) {
                kept++;
                continue;
            }
            PyObject *pair = at < kept ? ready_pair(fd, number, PyTuple_GET_ITEM(event, 1)) : NULL;
            if (pair == NULL) {
                Py_DECREF(ready);
                if (!PyErr_Occurred()) {
                    PyErr_SetString(PyExc_RuntimeError, "the events changed while read");
                }
                return NULL;
            }
            PyTuple_SET_ITEM(ready, at++, pair);
        }
        if (fill) {
            return ready;
        }
    }
    Py_UNREACHABLE();
}

static PyObject *
configure_spawn(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"spawn",        "create_task", "naming_callers", "callback_entry",
                             "task_factory", "selector",    NULL};
    PyObject *spawn, *create, *naming, *entry, *factory_attr, *selector_attr;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO!OUU", kwlist, &spawn, &create,
                                     &PyTuple_Type, &naming, &entry, &factory_attr,
                                     &selector_attr)) {
        return NULL;
    }
    Py_XSETREF(str_task_factory_attr, Py_NewRef(factory_attr));
    Py_XSETREF(str_selector_attr, Py_NewRef(selector_attr));
    Py_XSETREF(spawn_code, Py_NewRef(spawn));
    Py_XSETREF(base_create_task, Py_NewRef(create));
    Py_XSETREF(naming_callers, Py_NewRef(naming));
    Py_XSETREF(callback_entry, Py_NewRef(entry));
    Py_RETURN_NONE;
}

/* What loop.py knows of asyncio's private task state: the Task attribute that is true when a
 * cancel() arrived during the task's last step, and the running-task table with the function
 * that names the running loop (for the step that ends a task: was it cancelled meanwhile?).
 * The table is None where asyncio keeps the running task elsewhere (3.14: in the thread
 * state); asyncio.current_task() is called then. */
static PyObject *
set_task_internals(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"cancel_pending", "current_tasks", "running_loop", NULL};
    PyObject *name, *tasks, *running;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UOO", kwlist, &name, &tasks, &running)) {
        return NULL;
    }
    if (tasks != Py_None && !PyDict_Check(tasks)) {
        PyErr_SetString(PyExc_TypeError, "current_tasks must be a dict or None");
        return NULL;
    }
    Py_XSETREF(cancel_pending_attr, Py_NewRef(name));
    Py_CLEAR(flag_task_type); /* learnt again for the new name */
    Py_XSETREF(current_tasks, tasks == Py_None ? NULL : Py_NewRef(tasks));
    Py_XSETREF(running_loop_func, Py_NewRef(running));
    Py_RETURN_NONE;
}

/* frame_access(mode=None): how frames are read, "in place" (the interpreter's own frames) or
 * "public" (frame objects); switches when given a mode. Returns the mode before. */
static PyObject *
frame_access(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *before = PyUnicode_FromString(frames_in_place ? "in place" : "public");
    if (before == NULL || nargs == 0 || args[0] == Py_None) {
        return before;
    }
    if (nargs > 1 || !PyUnicode_Check(args[0])) {
        Py_DECREF(before);
        PyErr_SetString(PyExc_TypeError, "frame_access(mode: str | None = None)");
        return NULL;
    }
    if (PyUnicode_CompareWithASCIIString(args[0], "public") == 0) {
        frames_in_place = 0;
    }
    else if (PyUnicode_CompareWithASCIIString(args[0], "in place") == 0 &&
             HAVE_FRAMES_IN_PLACE) {
        frames_in_place = 1;
    }
    else {
        Py_DECREF(before);
        PyErr_Format(PyExc_ValueError, "frames can be read %s", HAVE_FRAMES_IN_PLACE
                                                                  ? "'in place' or 'public'"
                                                                  : "'public' only here");
        return NULL;
    }
    return before;
}

static PyMethodDef module_methods[] = {
    {"frame_access", (PyCFunction)(void (*)(void))frame_access, METH_FASTCALL,
     "How frames are read: 'in place' (the interpreter's own frames) or 'public' (frame "
     "objects); switches to the mode given, returns the one before."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "Hand over the tables the fast path reads (describe.LIBRARY_CALLS, record codes)."},
    {"inherit_send", inherit_send, METH_O,
     "Give a Python subclass of CoroProxy the am_send slot the C task calls."},
    {"configure_spawn", (PyCFunction)(void (*)(void))configure_spawn,
     METH_VARARGS | METH_KEYWORDS,
     "What SpawnMethod (create_task) needs: the SPAWN code, asyncio's create_task, the codes "
     "that name a task after creating it, and Handle._run's code."},
    {"ready_fds", (PyCFunction)(void (*)(void))ready_fds, METH_FASTCALL,
     "((fd, mask), ...) of a select() result, without the loop's own fds."},
    {"set_task_internals", (PyCFunction)(void (*)(void))set_task_internals,
     METH_VARARGS | METH_KEYWORDS,
     "What asyncio keeps privately about tasks: the attribute that is true when a cancel() "
     "arrived during the task's last step, the running-task table and _get_running_loop."},
    {NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "loopviz.trace._speedups",
    "The tracer's hot path in C (see proxy.py for the same logic in Python).", -1,
    module_methods};

#define INTERN(var, text)                                                                        \
    if ((var = PyUnicode_InternFromString(text)) == NULL) {                                      \
        return NULL;                                                                             \
    }

PyMODINIT_FUNC
PyInit__speedups(void)
{
    INTERN(str_cr_frame, "cr_frame");
    INTERN(str_gi_frame, "gi_frame");
    INTERN(str_gi_yieldfrom, "gi_yieldfrom");
    INTERN(str_gi_code, "gi_code");
    INTERN(str_cr_await, "cr_await");
    INTERN(str_cr_code, "cr_code");
    INTERN(str_step_done, "step_done");
    INTERN(str_step_failed, "step_failed");
    INTERN(str_describe, "_describe");
    INTERN(str_coro_name, "_coro");
    INTERN(str_throw, "throw");
    INTERN(str_throw_done, "_throw_done");
    INTERN(str_returned, "returned");
    INTERN(str_cancelled, "cancelled");
    INTERN(str_empty, "");
    INTERN(str_get_coro, "get_coro");
    INTERN(str_tracer, "tracer");
    INTERN(str_name, "name");
    INTERN(str_get_name, "get_name");
    INTERN(str_create_other, "_create_other_task");
    INTERN(str_send_nested, "_send_nested");
    INTERN(str_f_locals, "f_locals");
    INTERN(str_register, "register");
    INTERN(str_modify, "modify");
    INTERN(str_unregister, "unregister");
    INTERN(str_poll, "poll");
    INTERN(str_close, "close");
    INTERN(str_fileno, "fileno");
    INTERN(str_closed, "closed");
    for (int i = 0; i < 3; i++) {
        pair_masks[i] = PyLong_FromLong(i + 1);
        if (pair_masks[i] == NULL) {
            return NULL;
        }
    }
    if (PyType_Ready(&RingType) < 0 || PyType_Ready(&RecorderType) < 0 ||
        PyType_Ready(&CoroProxyType) < 0 || PyType_Ready(&SpawnMethodType) < 0 ||
        PyType_Ready(&PollWatchType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Recorder", (PyObject *)&RecorderType) < 0 ||
        PyModule_AddObjectRef(module, "CoroProxy", (PyObject *)&CoroProxyType) < 0 ||
        PyModule_AddObjectRef(module, "Ring", (PyObject *)&RingType) < 0 ||
        PyModule_AddObjectRef(module, "SpawnMethod", (PyObject *)&SpawnMethodType) < 0 ||
        PyModule_AddObjectRef(module, "PollWatch", (PyObject *)&PollWatchType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
