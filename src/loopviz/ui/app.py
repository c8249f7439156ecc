"""The loopviz dashboard: three live panels on one traced loop, driven from the keyboard.

The traced loop runs in its own thread (see ``loopviz.runner``); this app never runs scene code.
A 30 Hz timer folds whatever the loop recorded into the models in one batch and refreshes the
panels; keys call the loop's thread-safe controls. So the UI stays responsive while the traced
loop is paused, stepping, or frozen by a blocking call.
"""

from __future__ import annotations

import signal
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from loopviz.runner import SceneSpec
from loopviz.scenes import SceneError
from loopviz.session import Session
from loopviz.ui.help import HelpScreen
from loopviz.ui.theme import DEFAULT_THEME, PROJECTOR
from loopviz.ui.widgets import (
    LoopBar,
    NarrationLine,
    OutputPanel,
    QueuePanel,
    SelectPanel,
    TasksPanel,
)

FRAME_RATE = 30
#: Narrower than this, panels switch (1/2/3) instead of standing side by side.
NARROW_WIDTH = 100
#: Smaller than this, nothing useful fits.
MIN_WIDTH, MIN_HEIGHT = 60, 18
PANELS = ("tasks", "select", "queue")


class LoopvizApp(App[int]):
    """The dashboard. ``session`` owns the traced loop; the widgets only read its models."""

    CSS_PATH = "loopviz.tcss"
    TITLE = "loopviz"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_pause", "pause/run"),
        Binding("n,right", "step", "step"),
        Binding("t", "step_task", "next task"),
        Binding("plus,equals_sign", "faster", "faster", key_display="+"),
        Binding("minus", "slower", "slower", key_display="-"),
        Binding("1", "zoom('tasks')", "tasks", show=False),
        Binding("2", "zoom('select')", "select", show=False),
        Binding("3", "zoom('queue')", "queue", show=False),
        Binding("0", "zoom('all')", "all panels", show=False),
        Binding("d", "consumer_toggle", "consumer"),
        Binding("a", "queue_action('add-consumer')", "add", show=False),
        Binding("x", "queue_action('remove-consumer')", "remove", show=False),
        Binding("b", "queue_action('burst')", "burst", show=False),
        Binding("m", "queue_action('cycle-ack')", "ack mode"),
        Binding("r", "restart", "restart"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
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
        self._zoom = "all"
        self._narrow_panel = focus if focus in PANELS else "tasks"
        self.frames = 0

    # -- building --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        session = self.session
        with Vertical(id="dashboard"):
            yield LoopBar(session, id="loop-bar")
            yield Static(id="tabs")
            with Horizontal(id="body"):
                yield TasksPanel(session, id="tasks")
                with Vertical(id="side"):
                    yield SelectPanel(session, id="select")
                    yield QueuePanel(session, id="queue")
            yield NarrationLine(session, id="narration")
            yield OutputPanel(session, id="output")
        yield Static(id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self.register_theme(PROJECTOR)
        if self._theme_name not in self.available_themes:
            self.notify(f"no theme {self._theme_name!r}; using {DEFAULT_THEME}", severity="warning")
            self._theme_name = DEFAULT_THEME
        self.theme = self._theme_name
        if self.focus_scene == "queue":
            self._zoom = "all"
        self._apply_layout()
        self.session.start()
        self.set_interval(1 / self._frame_rate, self.frame)
        try:  # a closed terminal (SIGHUP) stops the loop and exits like q
            import asyncio

            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
            pass

    async def on_unmount(self) -> None:
        self.session.stop()

    # -- the frame -------------------------------------------------------------------------------

    def frame(self) -> None:
        """Fold what the loop recorded, then refresh what changed (about 30 times a second)."""
        self.session.pump()
        self.frames += 1
        changed = self.session.version != self._shown_version
        if changed:
            self._shown_version = self.session.version
            for panel_id in ("#tasks", "#select", "#queue", "#narration", "#output"):
                self.query_one(panel_id).refresh()
        # The loop bar also shows wall-clock things (a freeze growing), so it redraws every frame.
        self.query_one("#loop-bar").refresh()

    # -- layout ----------------------------------------------------------------------------------

    def on_resize(self) -> None:
        self._apply_layout()

    def _apply_layout(self) -> None:
        width, height = self.size
        screen = self.screen
        too_small = width < MIN_WIDTH or height < MIN_HEIGHT
        screen.set_class(too_small, "-too-small")
        if too_small:
            self.query_one("#too-small", Static).update(
                f"loopviz needs a terminal of at least {MIN_WIDTH}x{MIN_HEIGHT};\n"
                f"this one is {width}x{height}. Enlarge it, or make the font smaller."
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
                for i, name in enumerate(PANELS, 1)
            )
            self.query_one("#tabs", Static).update(tabs + "   (widen to 100 columns for all)")

    # -- actions: the loop -----------------------------------------------------------------------

    def action_toggle_pause(self) -> None:
        self.session.toggle_pause()
        self.query_one("#loop-bar").refresh()

    def action_step(self) -> None:
        self.session.step()

    def action_step_task(self) -> None:
        self.session.step_task()

    def action_faster(self) -> None:
        self.session.faster()
        self.query_one("#loop-bar").refresh()

    def action_slower(self) -> None:
        self.session.slower()
        self.query_one("#loop-bar").refresh()

    def action_restart(self) -> None:
        self.session.restart()
        self._shown_version = -1
        self.notify("scenes restarted", timeout=2)

    # -- actions: the view -----------------------------------------------------------------------

    def action_zoom(self, panel: str) -> None:
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
        except SceneError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        self.notify(action.replace("-", " "), timeout=1.5)


def run_dashboard(
    specs: list[SceneSpec],
    *,
    focus: str | None = None,
    speed: float = 1.0,
    paused: bool = False,
    theme: str | None = None,
) -> int:
    """Run the dashboard until the user quits; the traced loop is always stopped on the way out."""
    session = Session(specs, speed=speed, paused=paused)
    app = LoopvizApp(session, focus=focus, theme=theme)
    try:
        app.run()
    finally:
        session.stop()
    return app.return_code or 0
