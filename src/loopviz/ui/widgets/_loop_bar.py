"""The loop bar: what the loop is doing right now, always on screen."""

from __future__ import annotations

from rich.text import Text

from loopviz.models.loop_state import HELD_AFTER_TASK_STEP, HELD_BEFORE_ITERATION, LoopState
from loopviz.ui.palette import Palette
from loopviz.ui.widgets._panel import Panel

#: Run states, each a word and a symbol (never colour alone). The symbols are plain BMP shapes
#: that every monospace font has at one cell wide (no emoji presentation).
RUNNING = " ▶ RUNNING "
PAUSED = " ‖ PAUSED "
STEPPING = " ‖ STEPPING… "
FROZEN = " ■ FROZEN "
ENDED = " ■ ENDED "


def loop_bar_text(
    loop: LoopState,
    palette: Palette,
    *,
    paused: bool,
    stepping: bool,
    speed: float,
    frozen_for: float,
    frozen_task: str | None,
    held_at: str | None = None,
    frozen_wall: float = 0.0,
    ended: str | None = None,
) -> Text:
    """Two lines: the run state and clock, then the iteration's phase and queues. A freeze is
    counted in loop seconds (the wall seconds beside them when the speed is not 1x)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if ended is not None:
        text.append(ENDED, palette.highlight)
        text.append(f" {ended}", palette.strong)
    elif frozen_for > 0:
        text.append(f"{FROZEN}{frozen_for:.1f}s ", palette.warn)
        if speed != 1:
            text.append(f" {frozen_wall:.1f}s wall", palette.muted)
        if frozen_task:
            text.append(f" in {frozen_task}: nothing else runs", palette.failed)
    elif paused:
        text.append(STEPPING if stepping else PAUSED, palette.highlight)
        if held_at == HELD_BEFORE_ITERATION:
            text.append(f" before iteration {loop.iteration + 1}", palette.strong)
        elif held_at == HELD_AFTER_TASK_STEP:
            text.append(" after a task step", palette.strong)
    else:
        text.append(RUNNING, palette.running)
    text.append(f"  speed {speed:g}x", palette.strong)
    text.append("  loop time ", palette.muted)
    text.append(f"{loop.now:.2f}s", palette.strong)
    text.append(f"  iteration {loop.iteration}", palette.strong)
    if loop.stalls:
        text.append(f"  stalls {loop.stalls}", palette.failed)
    if loop.dropped:
        text.append(f"  dropped events {loop.dropped}", palette.failed)
    text.append("\n")
    phase = loop.phase or "starting"
    text.append(" phase ", palette.muted)
    text.append(phase, palette.strong)
    if phase == "wait in select":
        timeout = loop.select_timeout
        if timeout is None:
            text.append(" (no timer: until I/O is ready)", palette.muted)
        else:
            text.append(f" (timeout {timeout:.3f}s)", palette.muted)
    text.append("  run queue ", palette.muted)
    text.append(str(loop.ready), palette.strong)
    text.append("  timers ", palette.muted)
    text.append(str(loop.timers), palette.strong)
    if loop.next_deadline is not None:
        text.append(f" (next at {loop.next_deadline:.2f}s)", palette.muted)
    return text


class LoopBar(Panel):
    DEFAULT_CSS = """
    LoopBar {
        height: 2; border: none; padding: 0; background: $panel;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def render(self) -> Text:
        session = self.session
        freeze = session.freeze()
        status = session.status()
        ended = None
        if status.state == "exited":
            how = f"by {status.signal}" if status.signal else f"with status {status.code}"
            ended = f"the program exited {how}; q quits"
        return loop_bar_text(
            session.models.core.loop,
            self.palette,
            paused=session.paused,
            stepping=session.stepping,
            speed=session.speed,
            frozen_for=freeze.seconds,
            frozen_wall=freeze.wall,
            frozen_task=freeze.task,
            held_at=session.held_at,
            ended=ended,
        )
