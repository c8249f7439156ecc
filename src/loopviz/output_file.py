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
  (and owner, where allowed); until then, and after any failure, the old file is whole. A
  read-only file is refused, as ``cp`` refuses it. In a folder that cannot take a new file, a
  writable file is written in place instead, emptied only when the first line arrives.
- A new file: made the same way, with the mode the umask gives.

An unnamed file (Linux's ``O_TMPFILE``) leaves nothing behind if the process dies; where the
file system has none, a hidden ``.NAME.XXXX.part`` is used and removed on every catchable exit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from dataclasses import dataclass

#: Names that mean a descriptor this process already holds (a shell's ``/dev/stdout``, a process
#: substitution's ``/dev/fd/63``).
_DESCRIPTOR_NAME = re.compile(r"/(?:dev/fd|proc/self/fd)/(\d+)")
_STANDARD_NAMES = {"-": 1, "/dev/stdout": 1, "/dev/stderr": 2}
#: Errors creating a file in a folder that mean "this folder takes no new files".
_FOLDER_REFUSES = (errno.EACCES, errno.EPERM, errno.EROFS)
_NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)


class OutputFileError(Exception):
    """Why a file cannot be written; the message is one line, naming the file."""


class ReaderGone(OutputFileError):
    """The pipe's reader went away (``loopviz record -o - | head``): stop quietly."""


@dataclass
class _Replacement:
    """Where the finished contents go: the unnamed (or hidden) file, linked over ``target``."""

    target: str
    hidden: str | None  # the fallback's hidden name, None for an unnamed file


class OutputFile:
    """A text file being written; ``close()`` puts it in place, ``discard()`` leaves the old one.

    Write errors come out as ``OutputFileError`` (``ReaderGone`` for a closed pipe)."""

    def __init__(
        self,
        name: str,
        fd: int,
        *,
        replacement: _Replacement | None = None,
        empty_on_first_write: bool = False,
    ) -> None:
        self.name = name
        self._fd = fd
        self._stream = open(fd, "w", encoding="utf-8", newline="", closefd=False)  # noqa: SIM115
        self._replacement = replacement
        self._empty_on_first_write = empty_on_first_write
        self._closed = False

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, name: str) -> OutputFile:
        """Check everything that can be checked now and open the file; ``OutputFileError`` if
        it cannot be written."""
        if not name:
            raise OutputFileError("cannot write '': the file name is empty")
        if "\0" in name:
            raise OutputFileError(f"cannot write {name!r}: a file name cannot contain NUL")
        shown = "standard output" if name == "-" else name
        descriptor = _descriptor_of(name)
        try:
            if descriptor is not None:
                return cls(name, _duplicate(descriptor, shown))
            return cls._open_path(name)
        except OSError as exc:
            raise OutputFileError(f"cannot write {shown}: {_reason(exc)}") from None

    @classmethod
    def _open_path(cls, name: str) -> OutputFile:
        try:
            info = os.stat(name)
        except FileNotFoundError:
            return cls._open_new(name)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            return cls._open_new(name)  # says which part is too long, if it can
        if stat.S_ISDIR(info.st_mode):
            raise OutputFileError(f"cannot write {name}: it is a directory")
        if not stat.S_ISREG(info.st_mode):
            return cls(name, os.open(name, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC))
        target = os.path.realpath(name)
        if not info.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise OutputFileError(f"cannot write {name}: the file is read-only")
        try:
            fd, hidden = _new_file(os.path.dirname(target), os.path.basename(target), 0o600)
        except OSError as exc:
            if exc.errno not in _FOLDER_REFUSES:
                raise
            fd = os.open(target, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
            return cls(name, fd, empty_on_first_write=True)
        _take_over(fd, info)
        return cls(name, fd, replacement=_Replacement(target, hidden))

    @classmethod
    def _open_new(cls, name: str) -> OutputFile:
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
        fd, hidden = _new_file(folder, base, 0o666)
        return cls(name, fd, replacement=_Replacement(os.path.join(folder, base), hidden))

    # -- writing ------------------------------------------------------------------------------

    def write(self, text: str) -> None:
        try:
            if self._empty_on_first_write:
                self._empty_on_first_write = False
                os.ftruncate(self._fd, 0)
            self._stream.write(text)
        except OSError as exc:
            raise self._error(exc) from None

    def flush(self) -> None:
        """Hand what was written to the system, so each line written so far is whole in the
        file (or its unnamed draft) whatever happens to the process next."""
        try:
            self._stream.flush()
        except OSError as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        """Finish: flush, and put a replacement in place of the old file."""
        if self._closed:
            return
        try:
            self._stream.flush()
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
        (a pipe, a device) stays written."""
        if self._closed:
            return
        replacement = self._replacement
        if replacement is not None and replacement.hidden is not None:
            with contextlib.suppress(OSError):
                os.unlink(replacement.hidden)
        with contextlib.suppress(OSError):
            self._stream.flush()
        self._release()

    def _release(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError, ValueError):
            self._stream.close()  # closefd=False: this only drops the buffer
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def _error(self, exc: OSError) -> OutputFileError:
        shown = "standard output" if self.name == "-" else self.name
        if exc.errno == errno.EPIPE:
            return ReaderGone(f"cannot write {shown}: its reader has gone")
        return OutputFileError(f"cannot write {shown}: {_reason(exc)}")


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
    os.set_inheritable(fd, False)
    return fd


def _new_file(folder: str, base: str, mode: int) -> tuple[int, str | None]:
    """A file in ``folder`` with no name yet (and ``mode`` less the umask), or, where the file
    system has no unnamed files, a hidden one; returns its descriptor and the hidden name."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            fd = os.open(folder, flag | os.O_WRONLY | os.O_CLOEXEC, mode)
        except OSError as exc:
            if exc.errno not in _NO_TMPFILE:
                raise
        else:
            if os.path.exists(f"/proc/self/fd/{fd}"):  # how it gets its name (see below)
                return fd, None
            os.close(fd)
    fd, hidden = tempfile.mkstemp(prefix=f".{base[:200]}.", suffix=".part", dir=folder)
    os.fchmod(fd, mode & ~_umask())
    return fd, hidden


def _take_over(fd: int, old: os.stat_result) -> None:
    """Give a replacement the old file's mode and, where allowed, its owner."""
    os.fchmod(fd, stat.S_IMODE(old.st_mode))
    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):
            os.fchown(fd, old.st_uid, old.st_gid)


def _put_in_place(fd: int, replacement: _Replacement) -> None:
    """Give the finished file its name, in one rename: the target is never half-written. An
    unnamed file first gets a hidden name through ``/proc/self/fd`` (``linkat`` following the
    link, which ``os.link`` does only when given a folder descriptor)."""
    if replacement.hidden is None:
        folder, base = os.path.split(replacement.target)
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for _ in range(100):
                candidate = f".{base[:200]}.{os.urandom(4).hex()}.part"
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
    os.replace(replacement.hidden, replacement.target)
    replacement.hidden = None


def _name_limit(folder: str) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).rstrip(".")
