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
from loopviz.output_file import OutputFile, OutputFileError, ReaderGone


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
    ],
    ids=["empty", "nul", "directory", "no-folder", "too-long", "not-a-folder"],
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

    def refuse(folder: str, base: str, mode: int) -> tuple[int, str | None]:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(output_file, "_new_file", refuse)
    target = tmp_path / "old.jsonl"
    target.write_text("a much longer earlier recording\n")
    out = OutputFile.open(str(target))
    assert target.read_text() == "a much longer earlier recording\n"
    out.write("new\n")
    out.close()
    assert target.read_text() == "new\n"
