"""A file the user named for a command to write (``record -o`` today; ``run --record``,
``replay --screenshot`` and ``export -o`` later): one mechanism, so every command treats the
user's files alike and never destroys what the name points at.

How a name is written depends on what it names, found out when it is opened, before any work:

- ``-``, ``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N``, ``/proc/self/fd/N``: the descriptor
  the process already has (a duplicate), never reopened, so ``>> log`` keeps appending and a
  pipe stays a pipe.
- A device, FIFO or socket, directly or through symlinks: written in place, as a shell's ``>``
  would (``/dev/null`` stays a device; a FIFO's reader gets the data).
- An existing regular file, directly or as a symlink's target (the link stays): the new contents
  go to an unnamed file in its folder, which replaces it only when complete, keeping its mode
  and owner; until then, and after any failure, the old file is whole. A read-only file is
  refused, as ``cp`` refuses it. Where a replacement would lose something (a file with other
  hard links, extended attributes or ACLs, another user's file this process cannot give back,
  a folder that takes no new file, a rename refused at the end), the file is written in place
  instead, emptied only when the first line arrives.
- A new file: made the same way, with the mode the umask gives.

An unnamed file (Linux's ``O_TMPFILE``) leaves nothing behind if the process dies; where the
file system has none, a hidden ``.loopviz-XXXXXXXX.part`` is used and removed on every catchable
exit. Writes to anything that can block (a pipe, a FIFO, a terminal) wait in ``poll``, so a stop
asked for while nobody reads still ends the command (``WriteStalled``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import select
import stat
from collections.abc import Callable
from dataclasses import dataclass

#: Names that mean a descriptor this process already holds (a shell's ``/dev/stdout``, a process
#: substitution's ``/dev/fd/63``).
_DESCRIPTOR_NAME = re.compile(r"/(?:dev/fd|proc/self/fd)/(\d+)")
_STANDARD_NAMES = {"-": 1, "/dev/stdout": 1, "/dev/stderr": 2}
#: Errors creating a file in a folder that mean "this folder takes no new files".
_FOLDER_REFUSES = (errno.EACCES, errno.EPERM, errno.EROFS)
_NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)
#: Bytes buffered before a write; bytes per ``write`` call to something that can block (what a
#: pipe that ``poll`` calls writable always takes whole).
BUFFER_SIZE = 1 << 16
CHUNK = 4096
#: Seconds between looks at ``should_stop`` while a write, or a FIFO's reader, keeps us waiting.
POLL_SECONDS = 0.1


class OutputFileError(Exception):
    """Why a file cannot be written; the message is one line, naming the file."""


class ReaderGone(OutputFileError):
    """The pipe's reader went away (``loopviz record -o - | head``): stop quietly."""


class WriteStalled(OutputFileError):
    """A stop was asked for while the reader was not reading: what is unwritten is dropped."""


@dataclass
class _Replacement:
    """Where the finished contents go: the unnamed (or hidden) file, linked over ``target``."""

    target: str
    hidden: str | None  # the fallback's hidden name, None for an unnamed file


class OutputFile:
    """A text file being written; ``close()`` puts it in place, ``discard()`` leaves the old one.

    Write errors come out as ``OutputFileError`` (``ReaderGone`` for a closed pipe,
    ``WriteStalled`` when ``should_stop`` said stop while a write waited)."""

    def __init__(
        self,
        name: str,
        fd: int,
        *,
        replacement: _Replacement | None = None,
        empty_on_first_write: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.name = name
        self._fd = fd
        self._replacement = replacement
        self._empty_on_first_write = empty_on_first_write
        self._should_stop = should_stop
        self._can_block = not stat.S_ISREG(os.fstat(fd).st_mode)
        self._pending: list[str] = []
        self._pending_size = 0
        self._closed = False
        #: Whole lines handed to the system so far: what a reader or the file has.
        self.lines_written = 0

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, name: str, *, should_stop: Callable[[], bool] = lambda: False) -> OutputFile:
        """Check everything that can be checked now and open the file; ``OutputFileError`` if
        it cannot be written. ``should_stop`` is asked while waiting (a FIFO's reader, a
        stalled pipe); opening a FIFO nobody reads then raises ``WriteStalled``."""
        if not name:
            raise OutputFileError("cannot write '': the file name is empty")
        if "\0" in name:
            raise OutputFileError(f"cannot write {name!r}: a file name cannot contain NUL")
        shown = "standard output" if name == "-" else name
        descriptor = _descriptor_of(name)
        try:
            if descriptor is not None:
                fd = _duplicate(descriptor, shown)
                return cls(name, fd, should_stop=should_stop)
            if name.endswith("/"):
                raise OutputFileError(f"cannot write {name}: a file name cannot end in /")
            return cls._open_path(name, should_stop)
        except OSError as exc:
            raise OutputFileError(f"cannot write {shown}: {_reason(exc)}") from None

    @classmethod
    def _open_path(cls, name: str, should_stop: Callable[[], bool]) -> OutputFile:
        try:
            info = os.stat(name)
        except FileNotFoundError:
            return cls._open_new(name, should_stop)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            return cls._open_new(name, should_stop)  # says which part is too long, if it can
        if stat.S_ISDIR(info.st_mode):
            raise OutputFileError(f"cannot write {name}: it is a directory")
        if stat.S_ISFIFO(info.st_mode):
            return cls(name, _open_fifo(name, should_stop), should_stop=should_stop)
        if not stat.S_ISREG(info.st_mode):
            fd = os.open(name, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
            return cls(name, fd, should_stop=should_stop)
        target = os.path.realpath(name)
        if not info.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise OutputFileError(f"cannot write {name}: the file is read-only")
        draft = None if _replacing_loses(target, info) else _draft_for(target, info)
        if draft is None:
            fd = os.open(target, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
            return cls(name, fd, empty_on_first_write=True, should_stop=should_stop)
        fd, hidden = draft
        return cls(name, fd, replacement=_Replacement(target, hidden), should_stop=should_stop)

    @classmethod
    def _open_new(cls, name: str, should_stop: Callable[[], bool]) -> OutputFile:
        if os.path.islink(name):
            raise OutputFileError(
                f"cannot write {name}: it is a symlink to {os.readlink(name)}, which does not exist"
            )
        folder, base = os.path.split(os.path.abspath(name))
        if not os.path.isdir(folder):
            raise OutputFileError(f"cannot write {name}: folder {folder} does not exist")
        limit = _name_limit(folder)
        if len(os.fsencode(base)) > limit:
            raise OutputFileError(
                f"cannot write {name}: the name is longer than {limit} bytes, "
                "the longest this file system takes"
            )
        fd, hidden = _new_file(folder, 0o666)
        return cls(
            name,
            fd,
            replacement=_Replacement(os.path.join(folder, base), hidden),
            should_stop=should_stop,
        )

    # -- writing ------------------------------------------------------------------------------

    def write(self, text: str) -> None:
        self._pending.append(text)
        self._pending_size += len(text)
        if self._pending_size >= BUFFER_SIZE:
            self.flush()

    def flush(self) -> None:
        """Hand what was written to the system, so each line written so far is whole in the
        file (or its unnamed draft) whatever happens to the process next."""
        if not self._pending:
            return
        data = "".join(self._pending).encode("utf-8")
        self._pending.clear()
        self._pending_size = 0
        try:
            if self._empty_on_first_write:
                self._empty_on_first_write = False
                os.ftruncate(self._fd, 0)
            self._write_all(data)
        except OSError as exc:
            raise self._error(exc) from None

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        poller = None
        while view:
            if self._can_block:
                if poller is None:
                    poller = select.poll()
                    poller.register(self._fd, select.POLLOUT)
                if not poller.poll(POLL_SECONDS * 1000):
                    if self._should_stop():
                        raise WriteStalled(
                            f"cannot write {self._shown}: nothing is reading what is written"
                        )
                    continue
            try:
                written = os.write(self._fd, view[:CHUNK] if self._can_block else view)
            except BlockingIOError:  # someone made our shared descriptor non-blocking
                continue
            self.lines_written += view[:written].tobytes().count(b"\n")
            view = view[written:]

    def close(self) -> None:
        """Finish: flush, and put a replacement in place of the old file."""
        if self._closed:
            return
        self.flush()
        try:
            replacement = self._replacement
            if replacement is not None:
                os.fsync(self._fd)
                _put_in_place(self._fd, replacement)
        except OSError as exc:
            self.discard()
            raise self._error(exc) from None
        self._release()

    def discard(self) -> None:
        """Give up: a replacement is dropped (the old file stays as it was); what went in place
        (a pipe, a device) stays written; what was never handed over is dropped."""
        if self._closed:
            return
        self._pending.clear()
        replacement = self._replacement
        if replacement is not None and replacement.hidden is not None:
            with contextlib.suppress(OSError):
                os.unlink(replacement.hidden)
        self._release()

    def _release(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            os.close(self._fd)

    @property
    def _shown(self) -> str:
        return "standard output" if self.name == "-" else self.name

    def _error(self, exc: OSError) -> OutputFileError:
        if exc.errno == errno.EPIPE:
            return ReaderGone(f"cannot write {self._shown}: its reader has gone")
        return OutputFileError(f"cannot write {self._shown}: {_reason(exc)}")


# -- helpers ------------------------------------------------------------------------------


def _descriptor_of(name: str) -> int | None:
    if name in _STANDARD_NAMES:
        return _STANDARD_NAMES[name]
    match = _DESCRIPTOR_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def _duplicate(descriptor: int, shown: str) -> int:
    try:
        fd = os.dup(descriptor)
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise OutputFileError(f"cannot write {shown}: it is closed") from None
        raise
    if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
        os.close(fd)
        raise OutputFileError(f"cannot write {shown}: it is open for reading only")
    os.set_inheritable(fd, False)
    return fd


def _open_fifo(name: str, should_stop: Callable[[], bool]) -> int:
    """Open a FIFO for writing once it has a reader, as a shell does, but looking at
    ``should_stop`` meanwhile (a blocking open would not let a signal through)."""
    while True:
        try:
            fd = os.open(name, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if should_stop():
                raise WriteStalled(f"cannot write {name}: nothing opened it for reading") from None
            select.select([], [], [], POLL_SECONDS)
            continue
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return fd


def _replacing_loses(target: str, info: os.stat_result) -> bool:
    """Whether replacing the file would lose what a write in place keeps: its other names
    (hard links) or its extended attributes (ACLs, security labels, notes)."""
    if info.st_nlink > 1:
        return True
    try:
        names = os.listxattr(target)
    except OSError:  # a file system without them
        return False
    return any(name != "security.selinux" for name in names)  # a new file gets its own label


def _draft_for(target: str, old: os.stat_result) -> tuple[int, str | None] | None:
    """An unnamed file to replace ``target`` with, with its mode and owner; None where the
    folder takes no new file or the owner cannot be given back (then write in place)."""
    try:
        fd, hidden = _new_file(os.path.dirname(target), 0o600)
    except OSError as exc:
        if exc.errno not in _FOLDER_REFUSES:
            raise
        return None
    try:
        if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
            os.fchown(fd, old.st_uid, old.st_gid)
        # A JSON file is no program: set-user and set-group bits are not carried over.
        os.fchmod(fd, stat.S_IMODE(old.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
    except PermissionError:
        _drop(fd, hidden)
        return None
    return fd, hidden


def _new_file(folder: str, mode: int) -> tuple[int, str | None]:
    """A file in ``folder`` with no name yet (and ``mode`` less the umask), or, where the file
    system has no unnamed files, a hidden one; returns its descriptor and the hidden name."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            fd = os.open(folder, flag | os.O_RDWR | os.O_CLOEXEC, mode)
        except OSError as exc:
            if exc.errno not in _NO_TMPFILE:
                raise
        else:
            if os.path.exists(f"/proc/self/fd/{fd}"):  # how it gets its name (see below)
                return fd, None
            os.close(fd)
    for _ in range(100):
        hidden = os.path.join(folder, _hidden_name())
        try:
            fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        except FileExistsError:
            continue
        return fd, hidden
    raise OSError(errno.EEXIST, "no free temporary name")  # pragma: no cover


def _put_in_place(fd: int, replacement: _Replacement) -> None:
    """Give the finished file its name, in one rename: the target is never half-written. An
    unnamed file first gets a hidden name through ``/proc/self/fd`` (``linkat`` following the
    link, which ``os.link`` does only when given a folder descriptor). If the folder refuses
    the rename (a sticky folder and another user's file), the contents are copied in place."""
    folder = os.path.dirname(replacement.target)
    if replacement.hidden is None:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for _ in range(100):
                candidate = _hidden_name()
                try:
                    os.link(f"/proc/self/fd/{fd}", candidate, dst_dir_fd=folder_fd)
                except FileExistsError:
                    continue
                replacement.hidden = os.path.join(folder, candidate)
                break
            else:  # pragma: no cover - a hundred random names taken
                raise OSError(errno.EEXIST, "no free temporary name")
        finally:
            os.close(folder_fd)
    try:
        os.replace(replacement.hidden, replacement.target)
    except PermissionError:
        _copy_into(fd, replacement.target)
        os.unlink(replacement.hidden)
    replacement.hidden = None


def _copy_into(source: int, target: str) -> None:
    """Write the draft's contents over ``target`` in place."""
    size = os.fstat(source).st_size
    out = os.open(target, os.O_WRONLY | os.O_TRUNC | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        offset = 0
        while offset < size:
            sent = os.sendfile(out, source, offset, size - offset)
            if sent == 0:  # pragma: no cover - the draft shrank under us
                break
            offset += sent
    finally:
        os.close(out)


def _drop(fd: int, hidden: str | None) -> None:
    os.close(fd)
    if hidden is not None:
        with contextlib.suppress(OSError):
            os.unlink(hidden)


def _hidden_name() -> str:
    """Short, whatever the target's name: a long name must not make its draft's too long."""
    return f".loopviz-{os.urandom(4).hex()}.part"


def _name_limit(folder: str) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).rstrip(".")
