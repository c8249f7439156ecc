"""The command line: one-line errors with exit status 2, and JSONL that reads back."""

from __future__ import annotations

import json
import subprocess
import sys
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
    assert not any(p.name.startswith(".loopviz-") for p in tmp_path.iterdir())


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
