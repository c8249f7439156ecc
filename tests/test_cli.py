"""The command line: one-line errors with exit status 2, and JSONL that reads back."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loopviz.cli import main
from loopviz.trace import read_jsonl

LOOPVIZ = [sys.executable, "-m", "loopviz"]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LOOPVIZ, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["record", "nope", "-o", "x.jsonl"], "unknown scene 'nope'"),
        (["record", "tasks", "-o", "x.jsonl", "--speed", "50"], "between 0.05x and 20x"),
        (["record", "tasks", "-o", "x.jsonl", "--speed", "fast"], "speed must be a number"),
        (["record", "tasks", "-o", "/no/such/folder/x.jsonl"], "does not exist"),
        (["record", "tasks", "-o", "."], "is a directory"),
        (["record", "tasks", "--variant", "zzz", "-o", "x.jsonl"], "no variant 'zzz'"),
        (["record", "queue", "-o", "x.jsonl", "--at", "2:explode"], "no action 'explode'"),
        (["record", "queue", "-o", "x.jsonl", "--at", "soon:burst"], "expected T:ACTION"),
        (["record", "queue", "-o", "x.jsonl", "--consumers", "9"], "between 0 and 8"),
        (["record", "tasks", "-o", "x.jsonl", "--ack", "auto"], "apply to the queue scene"),
        (["record", "tasks", "-o", "x.jsonl", "--duration", "-1"], "seconds must be"),
        (["record", "tasks"], "required: -o/--output"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["tasks", "--speed", "0"], "between 0.05x and 20x"),
        (["record", "queue", "-o", "x.jsonl", "--at", "nan:burst"], "expected T:ACTION"),
        (["record", "queue", "-o", "x.jsonl", "--at", "inf:burst"], "expected T:ACTION"),
        (["record", "queue", "-o", "x.jsonl", "--at", "1e309:burst"], "expected T:ACTION"),
        (["record", "queue", "-o", "x.jsonl", "--at=-1:burst"], "expected T:ACTION"),
        (["record", "tasks", "-o", "x.jsonl", "--duration", "nan"], "seconds must be"),
        (["--theme", "nope"], "no theme 'nope' (themes: ansi-dark,"),
        (["tasks", "--theme", "nope"], "no theme 'nope'"),
        (["record", "tasks", "-o", ""], "the file name is empty"),
        (["record", "tasks", "-o", "x" * 300], "the name is longer than"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("loopviz: error: ") and message in err
    assert "Traceback" not in err
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_a_huge_argument_is_cut_in_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    huge = "y" * 100_000
    assert main(["record", "tasks", "-o", "x.jsonl", "--variant", huge]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 400, err
    assert "(100000 characters)" in err


def test_a_huge_argument_with_spaces_is_cut_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "tasks", "-o", "x.jsonl", "--variant", "ab " * 40_000]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 500, err


def test_an_argument_with_newlines_stays_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "tasks", "-o", "x.jsonl", "--variant", "a\nb\rc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a\\nb\\rc" in err, err


def test_an_action_after_the_end_is_warned_about(tmp_path: Path) -> None:
    out = tmp_path / "q.jsonl"
    result = run_cli(
        "record", "queue", "--speed", "20", "--duration", "1", "--at", "5:burst", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "loopviz: warning: --at 5:burst is after the recording ends (1 s of loop time): "
        "it will not happen"
    )


def test_record_writes_jsonl_that_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "tasks.jsonl"
    result = run_cli("record", "tasks", "--speed", "20", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("loopviz: recorded ")
    events = read_jsonl(str(out))
    assert [e.seq for e in events] == list(range(len(events)))
    texts = "".join(e["text"] for e in events if e.kind == "output")
    assert texts.startswith("1 -> a\n2 -> b\n")
    finished = [e for e in events if e.kind == "scene.finished"]
    assert finished and finished[0]["took"] == pytest.approx(6.5, abs=0.3)
    for line in out.read_text().splitlines():
        assert isinstance(json.loads(line), dict)


def test_record_queue_with_actions_and_duration(tmp_path: Path) -> None:
    out = tmp_path / "queue.jsonl"
    result = run_cli(
        "record",
        "queue",
        "--speed",
        "20",
        "--duration",
        "8",
        "--ack",
        "auto",
        "--at",
        "2:consumer-down",
        "--at",
        "5:consumer-up",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    events = read_jsonl(str(out))
    kinds = [e.kind for e in events]
    assert "consumer.down" in kinds and "consumer.up" in kinds
    assert events[-1].t < 8.5
    started = next(e for e in events if e.kind == "queue.started")
    assert started["ack"] == "auto"


def test_record_to_stdout(tmp_path: Path) -> None:
    result = run_cli("record", "tasks", "--speed", "20", "--duration", "1", "-o", "-")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(json.loads(line)["kind"] for line in lines)


def test_a_failed_run_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "keep.jsonl"
    out.write_text("the user's earlier recording\n")
    monkeypatch.chdir(tmp_path)
    assert main(["record", "tasks", "--variant", "nope", "-o", str(out)]) == 2
    assert out.read_text() == "the user's earlier recording\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jsonl"]


def test_python_dash_m_and_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("loopviz ")


@pytest.mark.parametrize(
    ("argv", "speed", "paused", "theme"),
    [
        (["--speed", "2", "tasks"], 2.0, False, None),
        (["tasks", "--speed", "2"], 2.0, False, None),
        (["--paused", "--theme", "loopviz-projector", "queue"], 1.0, True, "loopviz-projector"),
        (["sockets", "--paused", "--theme", "textual-light"], 1.0, True, "textual-light"),
        (["--speed", "4", "record", "tasks", "-o", "x.jsonl"], 4.0, False, None),
        (["record", "tasks", "-o", "x.jsonl", "--speed", "5"], 5.0, False, None),
    ],
)
def test_options_before_or_after_the_command(
    argv: list[str], speed: float, paused: bool, theme: str | None
) -> None:
    from loopviz.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.speed, args.paused, args.theme) == (speed, paused, theme)


# -- where the events go, and what ends a recording ---------------------------------------------


def test_dev_null_stays_a_device() -> None:
    before = os.stat("/dev/null")
    result = run_cli("record", "tasks", "--speed", "20", "--duration", "1", "-o", "/dev/null")
    assert result.returncode == 0, result.stderr
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_a_read_only_file_is_refused_before_the_run(tmp_path: Path) -> None:
    out = tmp_path / "ro.jsonl"
    out.write_text("precious\n")
    out.chmod(0o444)
    result = run_cli("record", "tasks", "--speed", "20", "-o", str(out))
    assert result.returncode == 2
    assert result.stderr == f"loopviz: error: cannot write {out}: the file is read-only\n"
    assert out.read_text() == "precious\n"


def test_a_full_disk_is_one_line_and_exit_1() -> None:
    result = run_cli("record", "tasks", "--speed", "20", "--duration", "1", "-o", "/dev/full")
    assert result.returncode == 1
    assert result.stderr == "loopviz: error: cannot write /dev/full: No space left on device\n"


def test_a_reader_that_leaves_ends_the_recording_quietly() -> None:
    """``loopviz record tasks -o - | head -2``: no traceback, the status of a SIGPIPE death."""
    with subprocess.Popen(
        [*LOOPVIZ, "record", "tasks", "--speed", "20", "-o", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        lines = [process.stdout.readline() for _ in range(2)]
        process.stdout.close()
        status = process.wait(60)
        err = process.stderr.read()
    assert all(json.loads(line)["kind"] for line in lines)
    assert status == 141
    assert err == b""


def test_a_closed_stdout_is_one_line_and_exit_2() -> None:
    result = subprocess.run(
        [*LOOPVIZ, "record", "tasks", "--speed", "20", "-o", "-"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(1),
    )
    assert result.returncode == 2
    assert result.stderr == "loopviz: error: cannot write standard output: it is closed\n"


def _record_until_signalled(
    out: Path, number: int, *, twice: bool = False, ignored: bool = False
) -> subprocess.CompletedProcess[str]:
    """Start a recording, let it run a second, send it a signal (and the same again at once)."""

    def start() -> None:
        if ignored:
            signal.signal(number, signal.SIG_IGN)  # what nohup does for SIGHUP

    with subprocess.Popen(
        [*LOOPVIZ, "record", "tasks", "--duration", "3" if ignored else "30", "-o", str(out)],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=start,
    ) as process:
        time.sleep(1.5)
        process.send_signal(number)
        if twice:
            process.send_signal(number)
        _, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, "", err)


@pytest.mark.parametrize(
    ("number", "twice"),
    [(signal.SIGTERM, False), (signal.SIGHUP, False), (signal.SIGINT, True)],
    ids=["sigterm", "sighup", "ctrl-c-twice"],
)
def test_a_signal_keeps_every_event_recorded_so_far(
    number: int, twice: bool, tmp_path: Path
) -> None:
    out = tmp_path / "killed.jsonl"
    out.write_text("an earlier recording\n")
    result = _record_until_signalled(out, number, twice=twice)
    assert result.returncode == 128 + number, result.stderr
    name = signal.Signals(number).name
    message = re.fullmatch(
        rf"loopviz: stopped by {name}; kept (\d+) events \(\d+\.\d s of loop time\) in "
        rf"{re.escape(str(out))}\n",
        result.stderr,
    )
    assert message, result.stderr
    events = read_jsonl(str(out))  # every line whole
    assert len(events) == int(message.group(1)) > 10
    assert [e.seq for e in events] == list(range(len(events)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed.jsonl"]


def test_an_ignored_hang_up_stays_ignored(tmp_path: Path) -> None:
    """``nohup loopviz record ...``: a closed terminal does not end the recording."""
    out = tmp_path / "nohup.jsonl"
    result = _record_until_signalled(out, signal.SIGHUP, ignored=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("loopviz: recorded ")
    assert read_jsonl(str(out))[-1].t >= 2.9


def test_with_stderr_closed_the_recording_holds_only_events() -> None:
    """``print(file=None)`` writes to stdout: the summary must not land in the recording."""
    result = subprocess.run(
        [*LOOPVIZ, "record", "tasks", "--speed", "20", "--duration", "1", "-o", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(2),
    )
    assert result.returncode == 0
    assert all(json.loads(line)["kind"] for line in result.stdout.splitlines())


def test_a_signal_ends_a_recording_whose_reader_does_not_read() -> None:
    """``loopviz record ... -o - | sleep 600`` and then ``kill``: the write waiting for the
    full pipe must not keep the signal out."""
    read_end, write_end = os.pipe()
    try:
        with subprocess.Popen(
            [*LOOPVIZ, "record", "queue", "--speed", "20", "--duration", "600", "-o", "-"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            os.close(write_end)
            write_end = -1
            time.sleep(3)  # long enough to fill the pipe: nothing reads it
            assert process.poll() is None
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=30)
        assert process.returncode == 143, err
        assert re.fullmatch(r"loopviz: stopped by SIGTERM; kept \d+ events .*\n", err), err
    finally:
        os.close(read_end)
        if write_end != -1:
            os.close(write_end)


@pytest.mark.parametrize(
    ("argv", "listed"),
    [
        (["tasks", "--help"], "async, sync, compare, blocking, blocking-literal"),
        (["sockets", "--help"], "nonblocking, blocking, select"),
        (["record", "--help"], "sockets: nonblocking, blocking, select"),
    ],
)
def test_help_lists_the_variants(
    argv: list[str], listed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert listed in " ".join(capsys.readouterr().out.split())
