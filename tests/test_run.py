"""``loopviz run``: real programs, unchanged, behave under it exactly as under ``python``.

Each program in ``tests/programs`` runs twice, under ``python`` and under ``loopviz run
--headless --record``: stdout, stderr and the exit status must be the same (byte for byte, but
for a test runner's own timing), and the recording must hold the program's loops.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

PROGRAMS = Path(__file__).with_name("programs")
LOOPVIZ = Path(sys.executable).with_name("loopviz")
EXAMPLES = Path(__file__).parents[1] / "examples"


def run(*argv: str | Path, cwd: Path = PROGRAMS) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(part) for part in argv], capture_output=True, cwd=cwd, timeout=120, check=False
    )


def traced(
    tmp_path: Path, *program: str | Path, cwd: Path = PROGRAMS
) -> tuple[subprocess.CompletedProcess[bytes], list[dict[str, Any]]]:
    recording = tmp_path / "run.jsonl"
    result = run(LOOPVIZ, "run", "--headless", "--record", recording, *program, cwd=cwd)
    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    return result, lines


def same_as_python(plain: subprocess.CompletedProcess[bytes], under: Any) -> None:
    def clean(data: bytes) -> bytes:  # a test runner's "Ran 3 tests in 0.012s"
        return re.sub(rb"in \d+\.\d+s", b"in Xs", data)

    assert under.returncode == plain.returncode, under.stderr.decode()
    assert clean(under.stdout) == clean(plain.stdout)
    assert clean(under.stderr) == clean(plain.stderr)


@pytest.mark.parametrize(
    "program",
    [
        ["echo_loopback.py"],
        ["subprocesses.py"],
        ["signals.py"],
        ["many_runs.py"],
        ["loops_in_threads.py"],
        ["async_tests.py"],
        ["fails.py"],
        ["exits.py"],
        ["argv_and_main.py", "one", "--two", "-m", "x"],
        ["-m", "pkg.app", "--help", "a"],
    ],
    ids=lambda argv: argv[0] if argv[0] != "-m" else argv[1],
)
def test_a_program_behaves_as_under_python(program: list[str], tmp_path: Path) -> None:
    plain = run(sys.executable, *program)
    under, lines = traced(tmp_path, *program)
    same_as_python(plain, under)
    header, *events = lines
    assert header["kind"] == "recording" and header["version"] == 1
    assert header["argv"] == program if program[0] != "-m" else ["-m pkg.app", "--help", "a"]
    assert events[-1]["kind"] == "program_exited"
    assert events[-1]["code"] == plain.returncode
    assert [event["seq"] for event in events] == list(range(len(events)))
    assert any(event["kind"] == "after_task_step" for event in events)
    assert all("loop" in event for event in events[:-1])


def test_each_loop_is_told_apart(tmp_path: Path) -> None:
    """Loops in turn and at once: every event names its loop; task ids are never shared;
    loop time goes on from one loop to the next."""
    _, (_, *events) = traced(tmp_path, "many_runs.py")
    loops = sorted({event["loop"] for event in events if "loop" in event})
    assert loops == [1, 2, 3, 4, 5]  # three asyncio.run, a Runner, one made by hand
    spawned = [(e["loop"], e["task"]) for e in events if e["kind"] == "task_spawned"]
    assert len({task for _, task in spawned}) == len(spawned)
    firsts = [next(e["t"] for e in events if e.get("loop") == n) for n in loops]
    assert firsts == sorted(firsts)
    _, (_, *events) = traced(tmp_path, "loops_in_threads.py")
    assert sorted({event["loop"] for event in events if "loop" in event}) == [1, 2, 3]


def test_the_notes_coroutines_interleave_in_the_users_file(tmp_path: Path) -> None:
    """The notes' program, unchanged: what python prints, and a recording that shows the two
    tasks taking turns (1, a, 2, b...) at lines of the user's own file."""
    script = EXAMPLES / "notes_coroutines.py"
    plain = run(sys.executable, script)
    under, (_, *events) = traced(tmp_path, script)
    same_as_python(plain, under)
    assert under.returncode == 0
    printed = [e["text"].strip() for e in events if e["kind"] == "output"]
    assert printed[:4] == ["1 ->", "a", "2 ->", "b"]
    assert len(printed) == 52
    steps = [e for e in events if e["kind"] == "after_task_step" and not e["done"]]
    assert {e["line"] for e in steps} >= {"notes_coroutines.py:6", "notes_coroutines.py:11"}
    assert all(e["path"] == str(script) for e in steps if e["line"].endswith(":6"))
    names = [e["name"] for e in steps]
    turns = [name for i, name in enumerate(names) if i == 0 or names[i - 1] != name]
    assert len(turns) > 40  # the two take turns, step after step


def test_a_syntax_error_is_the_programs_own(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\ndef (:\n")
    plain = run(sys.executable, bad, cwd=tmp_path)
    under = run(LOOPVIZ, "run", "--headless", bad, cwd=tmp_path)
    same_as_python(plain, under)
    assert under.returncode == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nowhere.py"], "loopviz: error: no such file: nowhere.py"),
        (["pkg"], "loopviz: error: pkg is a directory, not a script"),
        (["-m", "no_such_module_here"], "loopviz: error: no module named 'no_such_module_here'"),
        ([], "loopviz: error: name a script to run, or -m MODULE (see 'loopviz run --help')"),
        (
            ["--paused", "--headless", "exits.py"],
            "loopviz: error: --paused needs the dashboard: a headless program cannot be stepped",
        ),
        (["--speed", "99", "exits.py"], None),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str | None) -> None:
    result = run(LOOPVIZ, "run", *argv)
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loopviz: error: ")
    if message is not None:
        assert lines[0] == message


def test_a_program_with_no_loop_is_told_so(tmp_path: Path) -> None:
    result = run(LOOPVIZ, "run", "--headless", "no_loop.py")
    assert result.returncode == 0
    assert result.stdout == b"just a print\n"
    assert result.stderr == b"loopviz: the program started no asyncio loop: nothing was traced\n"


def test_the_dashboard_records_and_feeds_the_program_its_stdin(tmp_path: Path) -> None:
    """``loopviz run --stdin FILE --record FILE`` with the dashboard (driven here as a Session
    on the same source): the program reads the file, and the recording has its header, its
    events and how it ended."""
    from loopviz.cli_run import child_config
    from loopviz.output_file import OutputFile
    from loopviz.session import Session
    from loopviz.sources.child import ChildSource

    script = tmp_path / "reads.py"
    script.write_text(
        "import asyncio, sys\n"
        "async def main():\n"
        "    for line in sys.stdin:\n"
        "        print('got', line.strip())\n"
        "        await asyncio.sleep(0)\n"
        "asyncio.run(main())\n"
    )
    given = tmp_path / "input.txt"
    given.write_text("first\nsecond\n")
    args = type("Args", (), {"headless": False, "speed": 5.0, "paused": False})()
    program = {"script": str(script), "args": []}
    source = ChildSource(child_config(args, program), interactive=True, stdin=str(given))
    session = Session(source, speed=5.0)
    recording = tmp_path / "dashboard.jsonl"
    session.record_to(OutputFile.open(str(recording)))
    session.start()
    deadline = time.monotonic() + 30
    while not session.status().over or source.ready():
        assert time.monotonic() < deadline, "the program never ended"
        session.pump()
        time.sleep(0.01)
    session.pump()
    assert session.finish_recording() is None
    session.stop()
    texts = "".join(line.text for line in session.models.output)
    assert "got first" in texts and "got second" in texts
    header, *events = (json.loads(line) for line in recording.read_text().splitlines())
    assert header["kind"] == "recording" and header["program"] == str(script)
    assert events[-1]["kind"] == "program_exited" and events[-1]["code"] == 0
    assert len(events) == session.events_recorded


def test_a_program_with_a_loop_of_its_own_is_told_and_traced(tmp_path: Path) -> None:
    under, (_, *events) = traced(tmp_path, "other_loop.py")
    assert under.returncode == 0
    assert under.stdout == b"TracedEventLoop\nTracedEventLoop\n"
    assert under.stderr == (
        b"loopviz: this program installs another event loop (__main__.OtherLoop); loopviz "
        b"traces the stock selector loop, and runs the program on that\n"
    )
    assert {event.get("loop") for event in events} >= {1, 2}
