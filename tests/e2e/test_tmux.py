"""The real ``loopviz`` command in a real terminal (tmux), driven as a person would drive it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

TMUX = shutil.which("tmux")
LOOPVIZ = Path(sys.executable).with_name("loopviz")


class Terminal:
    """One tmux session on a private server, 120x36, running a plain shell."""

    def __init__(self) -> None:
        self.socket = f"loopviz-e2e-{uuid.uuid4().hex[:8]}"
        env = {
            k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TEXTUAL_THEME", "TMUX")
        }
        env["TERM"] = "xterm-256color"
        self._run(
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "36",
            "-s",
            "main",
            "bash --norc --noprofile",
            env=env,
        )

    def _run(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [TMUX, "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=env,
            check=True,
        )  # type: ignore[list-item]
        return result.stdout

    def keys(self, *keys: str) -> None:
        self._run("send-keys", "-t", "main", *keys)

    def type(self, text: str) -> None:
        self._run("send-keys", "-t", "main", "-l", text)

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", "main")

    def flag(self, name: str) -> str:
        return self._run("display-message", "-p", "-t", "main", f"#{{{name}}}").strip()

    def wait_for(self, check: Callable[[str], bool], what: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"never saw {what}; the screen was:\n{screen}")

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    if TMUX is None:
        pytest.fail("tmux is needed for the end-to-end test (.ci/run installs it)")
    if not LOOPVIZ.exists():
        pytest.fail(f"the loopviz command is not installed next to {sys.executable}")
    term = Terminal()
    try:
        yield term
    finally:
        term.close()


def iteration(screen: str) -> int:
    match = re.search(r"(?<!before )iteration (\d+)", screen)  # the counter, not "before ..."
    assert match, screen
    return int(match.group(1))


def test_the_dashboard_runs_pauses_steps_and_quits_cleanly(terminal: Terminal) -> None:
    terminal.type(f"{LOOPVIZ} --speed 2; echo loopviz-exited-$?")
    terminal.keys("Enter")

    # A newcomer sees all three panels moving within seconds.
    screen = terminal.wait_for(
        lambda s: "RUNNING" in s and "print_numbers" in s and "consumers" in s, "the dashboard"
    )
    for panel in ("Tasks", "Select", "Queue", "Output"):
        assert panel in screen
    assert terminal.flag("alternate_on") == "1"
    first = iteration(screen)
    terminal.wait_for(lambda s: iteration(s) > first, "the loop iterating")

    # space pauses: the loop bar says so and the iteration count stands still.
    terminal.keys("Space")
    terminal.wait_for(
        lambda s: "PAUSED  before iteration" in s or "PAUSED  after a task step" in s,
        "the loop stopped at its gate",
    )
    time.sleep(0.5)  # the screen catches up with the events the loop recorded on its way
    still = terminal.screen()
    time.sleep(0.5)
    assert iteration(terminal.screen()) == iteration(still)

    # n runs exactly one loop iteration.
    before = iteration(still)
    terminal.keys("n")
    stepped = terminal.wait_for(lambda s: iteration(s) == before + 1, "one more iteration")
    assert "PAUSED" in stepped or "STEPPING" in stepped

    # d takes the SMS consumer down; the queue panel says so.
    terminal.keys("Space")
    terminal.wait_for(lambda s: "RUNNING" in s, "running again")
    terminal.keys("d")
    terminal.wait_for(lambda s: "DOWN" in s, "the consumer down")
    terminal.keys("d")
    terminal.wait_for(lambda s: "DOWN" not in s and "▲ up" in s, "the consumer back up")

    # q quits: the shell prompt is back, the alternate screen is gone, the cursor is visible.
    terminal.keys("q")
    after = terminal.wait_for(lambda s: "loopviz-exited-0" in s, "loopviz exit with status 0")
    assert "RUNNING" not in after
    assert terminal.flag("alternate_on") == "0"
    assert terminal.flag("cursor_flag") == "1"
    assert terminal.flag("mouse_any_flag") == "0"


def test_too_small_a_terminal_says_how_large_it_must_be(terminal: Terminal) -> None:
    terminal._run("resize-window", "-t", "main", "-x", "50", "-y", "14")
    terminal.type(f"{LOOPVIZ}; echo loopviz-exited-$?")
    terminal.keys("Enter")
    screen = terminal.wait_for(lambda s: "at least" in s, "the too-small message")
    assert "60x18" in screen.replace("\n", "")
    terminal.keys("q")
    terminal.wait_for(lambda s: "loopviz-exited-0" in s, "loopviz exit")


def processes_running(*words: str) -> list[str]:
    """Command lines of the machine's processes that hold every one of ``words`` (read from
    /proc: not every system has pgrep)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # ended meanwhile
            continue
        if all(word in command for word in words):
            found.append(command)
    return found


def assert_restored(terminal: Terminal) -> None:
    """The shell's screen is back: no alternate screen, a visible cursor, no mouse tracking."""
    assert terminal.flag("alternate_on") == "0"
    assert terminal.flag("cursor_flag") == "1"
    assert terminal.flag("mouse_any_flag") == "0"


def test_ctrl_c_quits_and_restores_the_terminal(terminal: Terminal) -> None:
    terminal.type(f"{LOOPVIZ} tasks --variant blocking; echo loopviz-exited-$?")
    terminal.keys("Enter")
    terminal.wait_for(lambda s: "print_numbers" in s, "the blocking scene")
    terminal.keys("C-c")
    terminal.wait_for(lambda s: "loopviz-exited-130" in s, "loopviz exit 130 after ctrl+c")
    assert_restored(terminal)


@pytest.mark.parametrize(("number", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_restore_the_terminal(
    number: int, status: int, terminal: Terminal, tmp_path: Path
) -> None:
    """What ``kill`` and ``timeout`` send: the loop stops, the terminal is restored, and the
    status says which signal, even mid-way through a blocking call."""
    pid_file = tmp_path / "pid"
    terminal.type(
        f"sh -c 'echo $$ > {pid_file}; exec {LOOPVIZ} tasks --variant blocking'; "
        "echo loopviz-exited-$?"
    )
    terminal.keys("Enter")
    terminal.wait_for(lambda s: "print_numbers" in s, "the blocking scene")
    assert terminal.flag("alternate_on") == "1"
    os.kill(int(pid_file.read_text()), number)
    terminal.wait_for(lambda s: f"loopviz-exited-{status}" in s, f"loopviz exit {status}")
    assert_restored(terminal)


def test_a_closed_terminal_stops_loopviz(terminal: Terminal, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    terminal.type(f"echo $$ > {pid_file}; exec {LOOPVIZ}")
    terminal.keys("Enter")
    terminal.wait_for(lambda s: "RUNNING" in s, "the dashboard")
    pid = int(pid_file.read_text())
    terminal.close()  # the terminal goes away: SIGHUP
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].strip()
    if state.startswith("Z"):
        return  # it exited; only its reaping is left to whoever adopted it
    os.kill(pid, 9)
    raise AssertionError(f"loopviz kept running after its terminal closed (state {state})")


def loop_time(screen: str) -> float:
    match = re.search(r"loop time (\d+\.\d+)s", screen)
    assert match, screen
    return float(match.group(1))


def test_stepping_the_blocking_scene_at_quarter_speed_shows_what_blocking_costs(
    terminal: Terminal,
) -> None:
    """The lesson under the controls a class uses: paused at 0.25x, each t runs one step, and a
    step that blocks in time.sleep(0.25) moves the loop's clock by 0.25 s (it used to stay at
    0.00 s, as if blocking were free)."""
    terminal.type(f"{LOOPVIZ} tasks --variant blocking --paused --speed 0.25")
    terminal.keys("Enter")
    terminal.wait_for(lambda s: "PAUSED" in s and "loop time" in s, "the paused dashboard")
    for _ in range(9):  # queued: each runs when the one before it is done (1 s of wall time)
        terminal.keys("t")

    def stalls(screen: str) -> int:
        match = re.search(r"stalls (\d+)", screen)
        return int(match.group(1)) if match else 0

    screen = terminal.wait_for(
        lambda s: stalls(s) >= 4 and "FROZEN" not in s, "four blocking steps", timeout=30
    )
    time.sleep(0.3)  # the screen catches up with the last step's events
    screen = terminal.screen()
    stalls_seen = stalls(screen)
    assert loop_time(screen) >= 0.25 * stalls_seen - 0.01, screen
    assert "print_numbers blocked the loop for 0.25 s" in screen or (
        "print_alphabet blocked the loop for 0.25 s" in screen
    )
    terminal.keys("q")


def test_loopviz_run_shows_a_program_steps_it_and_leaves_nothing_behind(
    terminal: Terminal,
) -> None:
    """``loopviz run`` on a long-running example: its tasks and their lines show, space pauses,
    n steps, q exits, and no process of the program remains."""
    example = Path(__file__).parents[2] / "examples" / "slow_service.py"
    terminal.type(f"{LOOPVIZ} run {example}; echo loopviz-exited-$?")
    terminal.keys("Enter")
    terminal.wait_for(lambda s: "price client" in s and "RUNNING" in s, "the program's tasks")
    # Its fds, named from what they are (the select panel may cut the name short).
    terminal.wait_for(lambda s: "tcp listen 127." in s, "the listening socket named")
    terminal.keys("1")  # the tasks panel alone: the whole of each line
    terminal.wait_for(lambda s: "slow_service.py:" in s, "the lines each task waits at")
    terminal.keys("0")
    terminal.wait_for(lambda s: "stalls" in s, "the hidden blocking call counted as a stall")
    terminal.keys("Space")
    still = terminal.wait_for(lambda s: "PAUSED" in s, "the program paused")
    time.sleep(0.5)
    before = iteration(terminal.screen())
    terminal.keys("n")
    terminal.wait_for(lambda s: iteration(s) == before + 1, "one more iteration")
    assert "PAUSED" in still
    terminal.keys("q")
    terminal.wait_for(lambda s: "loopviz-exited-0" in s, "loopviz exit with status 0")
    assert_restored(terminal)
    assert processes_running("loopviz.wire.child", example.name) == []
