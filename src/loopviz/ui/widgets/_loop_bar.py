"""The loop bar: what the loop is doing right now, always on screen."""

from __future__ import annotations

from rich.text import Text

from loopviz.models.loop_state import LoopState
from loopviz.ui.palette import Palette
from loopviz.ui.widgets._panel import Panel


def loop_bar_text(
    loop: LoopState,
    palette: Palette,
    *,
    paused: bool,
    speed: float,
    frozen_for: float,
    frozen_task: str | None,
) -> Text:
    """Two lines: the run state and clock, then the iteration's phase and queues."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if frozen_for > 0:
        who = f" in {frozen_task}" if frozen_task else ""
        text.append(f" ■ FROZEN {frozen_for:4.1f}s{who} ", palette.warn)
    elif paused:
        state = " ⏸ STEPPING " if loop.stepping else " ⏸ PAUSED "
        text.append(state, palette.highlight)
    else:
        text.append(" ▶ RUNNING ", palette.running)
    text.append(f"  speed {speed:g}x", palette.strong)
    text.append(f"   loop time {loop.now:7.2f}s", palette.muted)
    text.append(f"   iteration {loop.iteration}", palette.strong)
    if loop.stalls:
        text.append(f"   stalls {loop.stalls}", palette.failed)
    if loop.dropped:
        text.append(f"   dropped events {loop.dropped}", palette.failed)
    text.append("\n")
    phase = loop.phase or "starting"
    text.append(" phase: ", palette.muted)
    text.append(phase, palette.strong)
    if phase == "wait in select":
        timeout = loop.select_timeout
        if timeout is None:
            text.append(" (no timer: until I/O is ready)", palette.muted)
        else:
            text.append(f" (timeout {timeout:.3f}s)", palette.muted)
    text.append(f"   ready queue {loop.ready}", palette.strong if loop.ready else palette.muted)
    text.append(f"   timers {loop.timers}", palette.strong if loop.timers else palette.muted)
    if loop.next_deadline is not None:
        text.append(f" (next at {loop.next_deadline:.2f}s)", palette.muted)
    return text


class LoopBar(Panel):
    DEFAULT_CSS = """
    LoopBar { height: 2; border: none; padding: 0; background: $panel; }
    """

    def render(self) -> Text:
        session = self.session
        loop = session.models.core.loop
        frozen = session.frozen_for()
        running = session.models.core.tasks.running_task() if frozen else None
        return loop_bar_text(
            loop,
            self.palette,
            paused=session.paused,
            speed=session.speed,
            frozen_for=frozen,
            frozen_task=running.name if running else None,
        )
