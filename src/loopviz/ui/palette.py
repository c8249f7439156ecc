"""Rich styles derived from the active Textual theme, so every theme (and the projector one)
keeps the panels legible. Colour never carries meaning alone: each state also has a word and a
symbol."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from textual.color import Color, ColorParseError
from textual.theme import Theme


@dataclass(frozen=True)
class Palette:
    running: Style
    ready: Style
    waiting: Style
    done: Style
    failed: Style
    cancelled: Style
    muted: Style
    strong: Style
    highlight: Style
    bar: Style
    bar_alt: Style
    lane: Style
    #: A lane cell where several tasks took turns: its place in the order, on the lane colour.
    lane_turn: Style
    warn: Style

    def state(self, state: str) -> Style:
        return getattr(self, state, self.muted)


#: The word each task state is shown with: "ready" (asyncio's) is "runnable" on screen, as the
#: queue panel's "ready" (RabbitMQ's) and an fd's readable/writable mean other things.
STATE_WORD = {"ready": "runnable"}

#: What each task state looks like besides its colour.
STATE_SYMBOL = {
    "running": "▶",
    "ready": "●",
    "waiting": "○",
    "done": "✓",
    "failed": "×",
    "cancelled": "∅",
}


def palette_for(theme: Theme) -> Palette:
    success = theme.success or "green"
    warning = theme.warning or "yellow"
    error = theme.error or "red"
    primary = theme.primary or "blue"
    accent = theme.accent or theme.secondary or primary
    foreground = theme.foreground or ("white" if theme.dark else "black")
    background = theme.background or ("black" if theme.dark else "white")
    # Secondary text: the foreground two thirds of the way from the background. Terminals render
    # "dim" anywhere from 40% to 70%; on a projector that can wash out, so mix it exactly.
    try:
        muted_colour = Color.parse(background).blend(Color.parse(foreground), 0.7).hex
        muted = Style(color=muted_colour)
    except ColorParseError:  # a theme with colour names Textual cannot parse
        muted = Style(color=foreground, dim=True)
    return Palette(
        running=Style(color=background, bgcolor=success, bold=True),
        ready=Style(color=warning, bold=True),
        waiting=Style(color=primary),
        done=muted,
        failed=Style(color=error, bold=True),
        cancelled=Style(color=accent),
        muted=muted,
        strong=Style(color=foreground, bold=True),
        highlight=Style(color=background, bgcolor=accent, bold=True),
        bar=Style(color=warning),
        bar_alt=Style(color=primary),
        lane=Style(color=success),
        lane_turn=Style(color=background, bgcolor=success, bold=True),
        warn=Style(color=background, bgcolor=error, bold=True),
    )
