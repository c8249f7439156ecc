"""The loopviz dashboard: live panels on one traced program, driven from the keyboard.

The program runs elsewhere (a child process; see ``loopviz.sources``); this app never runs its
code and never touches its loop. A 30 Hz timer folds whatever the source read into the models in
one batch and refreshes the panels; keys send commands through the source. So the UI stays
responsive while the program is paused, stepping, or frozen by a blocking call, and its drawing
never slows the program it shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.geometry import Size
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static

from loopviz.output_file import OutputFile, OutputFileError
from loopviz.session import Session
from loopviz.sources import CommandError
from loopviz.ui.help import HelpScreen
from loopviz.ui.theme import DEFAULT_THEME, PROJECTOR
from loopviz.ui.widgets import (
    LoopBar,
    NarrationLine,
    OutputPanel,
    ProblemBar,
    QueuePanel,
    SelectPanel,
    TasksPanel,
)

FRAME_RATE = 30
#: After a key, for this long (seconds), the app looks for the program's answer every
#: ``HURRY_EVERY`` seconds and draws it as soon as it comes, instead of at the next frame.
HURRY_FOR = 0.3
HURRY_EVERY = 0.004
#: Narrower than this, panels switch (1/2/3) instead of standing side by side.
NARROW_WIDTH = 100
#: Smaller than this, nothing useful fits.
MIN_WIDTH, MIN_HEIGHT = 60, 18
PANELS = ("tasks", "select", "queue")
#: Exit statuses when a signal (or Ctrl+C) ends the dashboard: 128 + the signal, as a shell
#: reports a process the signal killed.
INTERRUPTED, TERMINATED, HUNG_UP = 130, 143, 129
#: After a signal, seconds the traced loop gets to stop; after a hang-up, also the seconds
#: Textual then gets before the process leaves without it. Both together stay under a second.
SIGNAL_GRACE = 0.4
#: Signals that end the dashboard, and the status each ends it with (not on Windows).
_ENDING_SIGNALS = {
    getattr(signal, name): status
    for name, status in (("SIGINT", INTERRUPTED), ("SIGTERM", TERMINATED), ("SIGHUP", HUNG_UP))
    if hasattr(signal, name)
}
#: The panel that shows each scene best (``loopviz sockets`` opens on the select panel).
SCENE_PANEL = {"tasks": "tasks", "sockets": "select", "queue": "queue"}
#: The scene each side panel is there for.
PANEL_SCENE = {"select": "sockets", "queue": "queue"}

_SPEED = Binding.Group("speed")
_CONSUMERS = Binding.Group("add/remove")
_ZOOM = Binding.Group("zoom")


class LoopvizApp(App[int]):
    """The dashboard. ``session`` reads the program's source; the widgets only read its models."""

    CSS_PATH = "loopviz.tcss"
    TITLE = "loopviz"
    # The footer shows the keys in this order and cuts the last ones on a narrow terminal: the
    # loop's keys first, the queue keys last (the queue panel repeats them). ``?`` lists them all.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_pause", "pause"),
        Binding("n,right", "step", "step"),
        Binding("t", "step_task", "task"),
        Binding("plus,equals_sign", "faster", "faster", key_display="+", group=_SPEED),
        Binding("minus", "slower", "slower", key_display="-", group=_SPEED),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit", "quit"),
        Binding("r", "restart", "restart"),
        Binding("s", "screenshot", "svg", show=False),
        Binding("1", "zoom('tasks')", "tasks", group=_ZOOM),
        Binding("2", "zoom('select')", "select", group=_ZOOM),
        Binding("3", "zoom('queue')", "queue", group=_ZOOM),
        Binding("0", "zoom('all')", "all", group=_ZOOM),
        Binding("d", "consumer_toggle", "consumer"),
        Binding("a", "queue_action('add-consumer')", "add", group=_CONSUMERS),
        Binding("x", "queue_action('remove-consumer')", "remove", group=_CONSUMERS),
        Binding("b", "queue_action('burst')", "burst"),
        Binding("m", "queue_action('cycle-ack')", "ack"),
        Binding("ctrl+c", "interrupt", "quit", show=False, priority=True),
    ]

    def __init__(
        self,
        session: Session,
        *,
        focus: str | None = None,
        theme: str | None = None,
        frame_rate: float = FRAME_RATE,
    ) -> None:
        super().__init__()
        self.session = session
        self.focus_scene = focus
        self._theme_name = theme or DEFAULT_THEME
        self._frame_rate = frame_rate
        self._shown_version = -1
        self._problems_told = 0
        self._frozen_task: int | None = None
        self.hang_up_timer: threading.Timer | None = None
        self._signal_handlers: list[int] = []
        self._frame_timer: Timer | None = None
        self._hurry_timer: Timer | None = None
        self._hurry_until = 0.0
        #: Set by run_dashboard: the status of a signal that came before the app could take it,
        #: and the signals the parent made us ignore (nohup), which stay ignored.
        self.early_status: int | None = None
        self.ignored_signals: frozenset[int] = frozenset()
        self._quitting = False
        self._zoom = "all"
        self._laid_out_for = Size(0, 0)
        #: The panels this session teaches with: the select panel with the sockets scene, the
        #: queue panel with the queue scene (``loopviz tasks`` gets the whole width).
        self.panels = tuple(p for p in PANELS if p == "tasks" or session.has_scene(PANEL_SCENE[p]))
        if not session.source.scenes:  # the user's own program: its tasks and its fds
            self.panels = ("tasks", "select")
        self._narrow_panel = SCENE_PANEL.get(focus or "", "tasks")
        self.frames = 0

    # -- building --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        session = self.session
        with Vertical(id="dashboard"):
            yield LoopBar(session, id="loop-bar")
            yield ProblemBar(session, id="problems")
            yield Static(id="tabs")
            with Horizontal(id="body"):
                with Vertical(id="main"):
                    yield TasksPanel(session, id="tasks")
                    yield OutputPanel(session, id="output")
                with Vertical(id="side"):
                    yield SelectPanel(session, id="select")
                    yield QueuePanel(session, id="queue")
            yield NarrationLine(session, id="narration")
        yield Static(id="too-small")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.register_theme(PROJECTOR)
        self.theme = self._theme_name  # one of THEMES: the command line checked it
        self.dashboard.set_class("queue" not in self.panels, "-no-queue")
        self.dashboard.set_class("select" not in self.panels, "-no-select")
        self.dashboard.set_class(self.panels == ("tasks",), "-no-side")
        self._apply_layout()
        self.session.start()
        self._frame_timer = self.set_interval(1 / self._frame_rate, self.frame)
        # SIGINT, SIGTERM and a closed terminal (SIGHUP) stop the loop and exit (not on Windows;
        # not off the main thread, as under a test runner).
        loop = asyncio.get_running_loop()
        for number, status in _ENDING_SIGNALS.items():
            if number in self.ignored_signals:
                continue
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(number, self._signalled, status)
                self._signal_handlers.append(number)
        if self.early_status is not None:  # a signal came while the app was starting
            self._signalled(self.early_status)

    async def on_unmount(self) -> None:
        for timer in (self._frame_timer, self._hurry_timer):
            if timer is not None:  # None if mounting failed before it started
                timer.stop()
        loop = asyncio.get_running_loop()
        for number in self._signal_handlers:  # the loop may outlive the app (a test's loop)
            loop.remove_signal_handler(number)
        self._signal_handlers.clear()
        self.session.stop()

    async def action_quit(self) -> None:
        """Stop the traced loop, then leave. Its tasks end while the app still owns the
        terminal, so nothing they print on the way out lands on the shell; a task stuck in a
        blocking call can take a moment, so the UI stays live meanwhile. q again leaves now."""
        self._leave(0, timeout=5.0)

    def action_interrupt(self) -> None:
        """Ctrl+C: leave as q does, with the status of an interrupted command."""
        self._leave(INTERRUPTED, timeout=5.0)

    def _leave(self, status: int, *, timeout: float) -> None:
        if self._quitting or self.session.status().over:
            self.exit(return_code=status)
            return
        self._quitting = True
        if timeout > SIGNAL_GRACE:
            self.notify("stopping the traced loop… (q again leaves at once)", timeout=10)
        self.run_worker(
            functools.partial(self._stop_and_exit, status, timeout), thread=True, group="quit"
        )

    def _stop_and_exit(self, status: int, timeout: float) -> None:
        self.session.stop(timeout)
        with contextlib.suppress(RuntimeError):  # the app already ended (q twice)
            self.call_from_thread(self.exit, return_code=status)

    def action_screenshot(self) -> None:
        """Save what is on screen as an SVG in the current folder (a new file: never one that
        is there already), through the same OutputFile every written file goes through."""
        folder = os.getcwd()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"loopviz-{stamp}.svg"
        for number in range(2, 100):
            if not os.path.lexists(os.path.join(folder, name)):
                break
            name = f"loopviz-{stamp}-{number}.svg"
        try:
            output = OutputFile.open(os.path.join(folder, name))
            output.write(self.export_screenshot(title=f"loopviz {stamp}"))
            output.close()
        except OutputFileError as exc:
            self.notify(str(exc), severity="error", timeout=5)
            return
        self.notify(f"saved {name}", timeout=3)

    def _signalled(self, status: int) -> None:
        """SIGINT or SIGTERM: leave promptly, restoring the terminal. SIGHUP: the terminal went
        away. Stop the traced loop first (its thread and sockets), then exit. There is no
        terminal left to restore, and Textual's shutdown can block for good writing to it (its
        writer queue is bounded and nothing drains it any more), so if the app has not ended a
        moment later, the process leaves without it."""
        if status != HUNG_UP:
            self._leave(status, timeout=SIGNAL_GRACE)
            return
        self.session.stop(timeout=SIGNAL_GRACE)
        timer = threading.Timer(SIGNAL_GRACE, os._exit, args=(HUNG_UP,))
        timer.daemon = True
        timer.start()
        self.hang_up_timer = timer  # run_dashboard cancels it once the app has ended
        self.exit(return_code=HUNG_UP)

    def watch_theme(self, theme: str) -> None:
        """The projector theme draws panel borders at full strength, not faded."""
        self.set_class(theme == PROJECTOR.name, "-projector")

    @property
    def dashboard(self) -> Screen[object]:
        """The screen with the panels (the help screen may be on top of it)."""
        return self.screen_stack[0]

    def _refresh_bar(self) -> None:
        with contextlib.suppress(NoMatches, IndexError):  # IndexError: shutting down
            self.dashboard.query_one("#loop-bar", LoopBar).refresh()

    # -- the frame -------------------------------------------------------------------------------

    def hurry(self) -> None:
        """A key was sent to the program: look for its answer every few ms for a moment, so
        it is drawn as soon as it arrives (a frame comes only every 33 ms)."""
        self._hurry_until = time.monotonic() + HURRY_FOR
        if self._hurry_timer is None:
            self._hurry_timer = self.set_interval(HURRY_EVERY, self._hurried_frame)

    def _hurried_frame(self) -> None:
        if time.monotonic() > self._hurry_until:
            if self._hurry_timer is not None:
                self._hurry_timer.stop()
            self._hurry_timer = None
            return
        if self.session.ready():
            self.frame()

    def frame(self) -> None:
        """Fold what the loop recorded, then refresh what changed (about 30 times a second)."""
        self.session.pump()
        self.frames += 1
        # Widgets are looked up each frame (cheap: by id), and a frame that finds none is
        # skipped: the timer may tick once more while the app is shutting down.
        try:
            if self.size != self._laid_out_for:
                self._apply_layout()
            screen = self.dashboard
            bar = screen.query_one("#loop-bar", LoopBar)
            changed = self.session.version != self._shown_version
            frozen_task = self.session.freeze().task_id
            if frozen_task != self._frozen_task:  # a step started or stopped holding the loop
                self._frozen_task = frozen_task
                screen.query_one("#tasks").refresh()
            if changed:
                self._shown_version = self.session.version
                for panel_id in ("#tasks", "#select", "#queue", "#narration", "#output"):
                    screen.query_one(panel_id).refresh()
                self._show_problems(screen.query_one("#problems", ProblemBar))
        except (NoMatches, IndexError):  # IndexError: no screen left
            return
        # The loop bar also shows wall-clock things (a freeze growing), so it redraws every frame.
        bar.refresh()

    def _show_problems(self, bar: ProblemBar) -> None:
        """A failed scene gets the problem bar and one notification; the app keeps running."""
        problems = self.session.models.problems
        bar.set_class(bool(problems), "-shown")
        bar.refresh()
        if len(problems) < self._problems_told:  # restarted: the models started over
            self._problems_told = 0
        for problem in problems[self._problems_told :]:
            self.notify(
                problem.error, title=f"scene {problem.scene} failed", severity="error", timeout=8
            )
        self._problems_told = len(problems)

    # -- layout ----------------------------------------------------------------------------------

    def _apply_layout(self) -> None:
        """Classes on the dashboard screen for the terminal's size, zoom and tab. The frame calls
        it whenever ``self.size`` changed: an ``on_resize`` handler can run before the app's size
        is updated (Textual applies it on a short timer), and then leaves the old layout."""
        width, height = self.size
        self._laid_out_for = self.size
        screen = self.dashboard
        too_small = width < MIN_WIDTH or height < MIN_HEIGHT
        screen.set_class(too_small, "-too-small")
        if too_small:
            screen.query_one("#too-small", Static).update(
                f"loopviz needs a terminal of at least {MIN_WIDTH}x{MIN_HEIGHT}\n"
                f"(this one is {width}x{height}).\n\n"
                "Enlarge the window or make the font smaller.\nq quits."
            )
        narrow = width < NARROW_WIDTH
        screen.set_class(narrow, "-narrow")
        for name in PANELS:
            screen.set_class(narrow and self._narrow_panel == name, f"-show-{name}")
            screen.set_class(not narrow and self._zoom == name, f"-zoom-{name}")
        if narrow:
            tabs = "  ".join(
                f"[reverse] {i} {name} [/reverse]"
                if name == self._narrow_panel
                else f" {i} {name} "
                for i, name in ((PANELS.index(name) + 1, name) for name in self.panels)
            )
            screen.query_one("#tabs", Static).update(
                f"{tabs}   [dim](widen to {NARROW_WIDTH} columns for all)[/dim]"
            )

    # -- actions: the loop -----------------------------------------------------------------------

    def action_toggle_pause(self) -> None:
        self.session.toggle_pause()
        self._refresh_bar()
        self.hurry()

    def action_step(self) -> None:
        self.session.step()
        self._refresh_bar()
        self.hurry()

    def action_step_task(self) -> None:
        self.session.step_task()
        self._refresh_bar()
        self.hurry()

    def action_faster(self) -> None:
        self.session.faster()
        self._refresh_bar()
        self.hurry()

    def action_slower(self) -> None:
        self.session.slower()
        self._refresh_bar()
        self.hurry()

    def action_restart(self) -> None:
        self.session.restart()
        self._shown_version = -1
        self.notify("scenes restarted", timeout=2)

    # -- actions: the view -----------------------------------------------------------------------

    #: Actions that belong to one scene: their keys show (and work) only where it runs.
    SCENE_ACTIONS: ClassVar[dict[str, str]] = {
        "consumer_toggle": "queue",
        "queue_action": "queue",
    }

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """On the user's own program (``loopviz run``: no scene at all) the scenes' keys and
        the zoom onto a panel it does not have are left out of the footer. With the scenes
        they stay, and say which scene they need (a class learns where the keys are)."""
        if self.session.source.scenes:
            return True
        if action in self.SCENE_ACTIONS:
            return False
        if action == "zoom" and parameters and parameters[0] != "all":
            return parameters[0] in self.panels
        return True

    def action_zoom(self, panel: str) -> None:
        if panel != "all" and panel not in self.panels:
            self.notify(f"the {panel} panel has no scene here (run: loopviz)", timeout=3)
            return
        if panel == "all":
            self._zoom = "all"
        elif self.size.width < NARROW_WIDTH:
            self._narrow_panel = panel
        else:
            self._zoom = "all" if self._zoom == panel else panel
        self._apply_layout()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # -- actions: the queue scene ----------------------------------------------------------------

    def action_consumer_toggle(self) -> None:
        """Take the consumer down, or bring a downed one back."""
        stats = self.session.models.queue
        down = any(view.state == "down" for view in stats.consumers.values())
        self.action_queue_action("consumer-up" if down else "consumer-down")

    def action_queue_action(self, action: str) -> None:
        if not self.session.has_scene("queue"):
            self.notify("the queue scene is not running (run: loopviz queue)", timeout=3)
            return
        try:
            self.session.act("queue", action)
        except CommandError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        self.hurry()
        self.notify(action.replace("-", " "), timeout=1.5)


@contextlib.contextmanager
def _signals_noted_until_mounted(app: LoopvizApp) -> Iterator[None]:
    """Until the app's loop takes them (``on_mount``), an ending signal is noted for the app to
    act on once it can restore the terminal: killed while starting, it must still leave the
    terminal as it found it."""

    def note(number: int, frame: FrameType | None) -> None:
        if app.early_status is None:
            app.early_status = _ENDING_SIGNALS[number]

    previous = {
        number: signal.signal(number, note)
        for number in _ENDING_SIGNALS
        if number not in app.ignored_signals
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(number, handler)


def run_dashboard(session: Session, *, focus: str | None = None, theme: str | None = None) -> int:
    """Run the dashboard until the user quits; the program is always stopped on the way out."""
    app = LoopvizApp(session, focus=focus, theme=theme)
    app.ignored_signals = frozenset(
        number for number in _ENDING_SIGNALS if signal.getsignal(number) == signal.SIG_IGN
    )
    try:
        with _signals_noted_until_mounted(app):
            app.run()
    finally:
        signalled = app.return_code in _ENDING_SIGNALS.values()
        session.stop(timeout=SIGNAL_GRACE if signalled else 5.0)
        if app.hang_up_timer is not None:  # ended in time after a hang-up: exit normally
            app.hang_up_timer.cancel()
    return app.return_code or 0
