"""``OutputFile``: whatever ``-o`` names, it is written, never destroyed, and nothing is left
behind."""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from pathlib import Path

import pytest

import loopviz.output_file as output_file
from loopviz.output_file import OutputFile, OutputFileError, ReaderGone, WriteStalled


def write_all(name: str | Path, *lines: str) -> None:
    out = OutputFile.open(str(name))
    for line in lines:
        out.write(line)
    out.close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def umask_027() -> object:
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_a_new_file_gets_the_umask_mode(tmp_path: Path, umask_027: object) -> None:
    target = tmp_path / "new.jsonl"
    write_all(target, "one\n", "two\n")
    assert target.read_text() == "one\ntwo\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_an_existing_file_is_replaced_only_when_complete_and_keeps_its_mode(
    tmp_path: Path,
) -> None:
    target = tmp_path / "old.jsonl"
    target.write_text("the user's earlier recording\n")
    target.chmod(0o604)
    out = OutputFile.open(str(target))
    out.write("new\n")
    out.flush()
    assert target.read_text() == "the user's earlier recording\n"  # untouched until the end
    assert leftovers(tmp_path) == []  # the draft has no name
    out.close()
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o604
    assert leftovers(tmp_path) == []


def test_discarding_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "old.jsonl"
    target.write_text("keep me\n")
    out = OutputFile.open(str(target))
    out.write("half a recording\n")
    out.flush()
    out.discard()
    assert target.read_text() == "keep me\n"
    assert leftovers(tmp_path) == []


def test_a_symlink_is_written_through_and_stays_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.jsonl"
    link.symlink_to(target.name)
    write_all(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == target.name
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_dangling_symlink_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "link.jsonl"
    link.symlink_to("nowhere.jsonl")
    with pytest.raises(
        OutputFileError, match=re.escape("symlink to nowhere.jsonl, which does not exist")
    ):
        OutputFile.open(str(link))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.jsonl"]


def test_a_read_only_file_is_refused_even_for_root(tmp_path: Path) -> None:
    target = tmp_path / "ro.jsonl"
    target.write_text("precious\n")
    target.chmod(0o444)
    with pytest.raises(OutputFileError, match=re.escape("ro.jsonl: the file is read-only")):
        OutputFile.open(str(target))
    assert target.read_text() == "precious\n"
    assert leftovers(tmp_path) == []


def test_dev_null_stays_a_device() -> None:
    before = os.stat("/dev/null")
    write_all("/dev/null", "into the void\n")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev, after.st_mode) == (
        before.st_ino,
        before.st_rdev,
        before.st_mode,
    )


def test_a_device_the_test_makes_stays_a_device(tmp_path: Path) -> None:
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.open(node, os.O_WRONLY)
    except OSError as exc:  # not root, or a nodev mount
        pytest.skip(f"cannot make a device here: {exc.strerror}")
    write_all(node, "into the void\n")
    assert stat.S_ISCHR(node.stat().st_mode)
    assert leftovers(tmp_path) == []


def test_a_full_device_is_one_error() -> None:
    out = OutputFile.open("/dev/full")
    with pytest.raises(OutputFileError, match="/dev/full: No space left on device"):
        out.write("x" * 100_000)
        out.close()
    out.discard()


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_all(fifo, "through the pipe\n")
    reader.join(10)
    assert not reader.is_alive()
    assert got == [b"through the pipe\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_descriptor_name_writes_to_that_descriptor_and_a_gone_reader_is_told() -> None:
    read_end, write_end = os.pipe()
    try:
        write_all(f"/dev/fd/{write_end}", "one\n")
        assert os.read(read_end, 100) == b"one\n"
        os.close(read_end)
        out = OutputFile.open(f"/proc/self/fd/{write_end}")
        with pytest.raises(ReaderGone):
            out.write("two\n")
            out.flush()
        out.discard()
    finally:
        os.close(write_end)


def test_appending_to_a_redirected_stdout_keeps_what_was_there(tmp_path: Path) -> None:
    target = tmp_path / "log.jsonl"
    target.write_text("earlier\n")
    with target.open("a") as log:
        saved = os.dup(1)
        os.dup2(log.fileno(), 1)
        try:
            write_all("/dev/stdout", "later\n")
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    assert target.read_text() == "earlier\nlater\n"


def test_a_closed_descriptor_is_one_error() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    with pytest.raises(OutputFileError, match="it is closed"):
        OutputFile.open(f"/dev/fd/{write_end}")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "the file name is empty"),
        ("a\0b", "cannot contain NUL"),
        ("{tmp}", "it is a directory"),
        ("{tmp}/no/such/x.jsonl", "does not exist"),
        ("{tmp}/" + "x" * 300, "the name is longer than 255 bytes"),
        ("{tmp}/file/x.jsonl", "Not a directory"),
        ("{tmp}/out.jsonl/", "a file name cannot end in /"),
    ],
    ids=["empty", "nul", "directory", "no-folder", "too-long", "not-a-folder", "slash"],
)
def test_what_cannot_be_written_is_refused_at_open(name: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputFileError, match=message):
        OutputFile.open(name.format(tmp=tmp_path))
    assert leftovers(tmp_path) == []


def test_without_unnamed_files_a_hidden_draft_is_used_and_always_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_027: object
) -> None:
    monkeypatch.delattr(os, "O_TMPFILE")
    target = tmp_path / "new.jsonl"
    out = OutputFile.open(str(target))
    out.write("one\n")
    assert len(leftovers(tmp_path)) == 1  # the hidden draft, while writing
    out.close()
    assert target.read_text() == "one\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []
    out = OutputFile.open(str(target))
    out.write("two\n")
    out.discard()
    assert target.read_text() == "one\n"
    assert leftovers(tmp_path) == []


def test_a_folder_that_takes_no_new_file_gets_the_file_written_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writable file in a read-only folder (what root never sees, so the folder's refusal is
    simulated): the file is emptied only when the first line arrives."""

    def refuse(folder: str, mode: int) -> tuple[int, str | None]:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(output_file, "_new_file", refuse)
    target = tmp_path / "old.jsonl"
    target.write_text("a much longer earlier recording\n")
    out = OutputFile.open(str(target))
    assert target.read_text() == "a much longer earlier recording\n"
    out.write("new\n")
    out.close()
    assert target.read_text() == "new\n"


def test_a_long_name_in_many_bytes_per_character_is_written(tmp_path: Path) -> None:
    """254 bytes in 85 characters: the draft's name must not grow with the target's."""
    target = tmp_path / ("記" * 84 + ".j")
    write_all(target, "one\n")
    assert target.read_text() == "one\n"
    assert leftovers(tmp_path) == []


def test_a_file_with_other_names_is_written_in_place(tmp_path: Path) -> None:
    target = tmp_path / "a.jsonl"
    target.write_text("old\n")
    other = tmp_path / "b.jsonl"
    os.link(target, other)
    write_all(target, "new\n")
    assert other.read_text() == "new\n"
    assert target.stat().st_ino == other.stat().st_ino


def test_extended_attributes_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "noted.jsonl"
    target.write_text("old\n")
    try:
        os.setxattr(target, "user.note", b"keep me")
    except OSError as exc:
        pytest.skip(f"no user xattrs here: {exc.strerror}")
    write_all(target, "new\n")
    assert target.read_text() == "new\n"
    assert os.getxattr(target, "user.note") == b"keep me"


def test_set_user_bits_are_not_carried_over(tmp_path: Path) -> None:
    target = tmp_path / "odd.jsonl"
    target.write_text("old\n")
    target.chmod(0o4755)
    write_all(target, "new\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_another_users_file_keeps_its_owner(tmp_path: Path) -> None:
    target = tmp_path / "theirs.jsonl"
    target.write_text("old\n")
    os.chown(target, 65534, 65534)
    write_all(target, "new\n")
    assert (target.stat().st_uid, target.stat().st_gid) == (65534, 65534)
    assert target.read_text() == "new\n"


def test_a_refused_rename_still_puts_the_file_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sticky folder refuses to replace another user's file (what root never sees, so the
    refusal is simulated): the contents are copied in, nothing is lost."""

    def refuse(source: str, target: str) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    target = tmp_path / "old.jsonl"
    target.write_text("a much longer earlier recording\n")
    out = OutputFile.open(str(target))
    out.write("new\n")
    monkeypatch.setattr(os, "replace", refuse)
    out.close()
    assert target.read_text() == "new\n"
    assert leftovers(tmp_path) == []


def test_a_read_only_descriptor_is_refused_at_open(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("")
    fd = os.open(source, os.O_RDONLY)
    try:
        with pytest.raises(OutputFileError, match="open for reading only"):
            OutputFile.open(f"/dev/fd/{fd}")
    finally:
        os.close(fd)


def test_a_fifo_nobody_opens_can_be_given_up_on(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    asked = []

    def stop_on_third_look() -> bool:
        asked.append(1)
        return len(asked) >= 3

    with pytest.raises(WriteStalled, match="nothing opened it for reading"):
        OutputFile.open(str(fifo), should_stop=stop_on_third_look)


def test_a_stop_gets_through_a_pipe_nobody_reads() -> None:
    """A full pipe would block a plain write forever; the stop must still end it, having
    counted only the lines that went through whole."""
    read_end, write_end = os.pipe()
    stopping = threading.Event()
    try:
        out = OutputFile.open(f"/dev/fd/{write_end}", should_stop=stopping.is_set)
        threading.Timer(0.3, stopping.set).start()
        with pytest.raises(WriteStalled, match="nothing is reading"):
            for _ in range(100_000):
                out.write("x" * 99 + "\n")
            out.flush()
        piped = 0
        os.set_blocking(read_end, False)
        with pytest.raises(BlockingIOError):
            while True:
                piped += len(os.read(read_end, 1 << 16))
        assert out.lines_written == piped // 100
        out.discard()
    finally:
        os.close(read_end)
        os.close(write_end)
