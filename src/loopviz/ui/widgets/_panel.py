"""The base of every dashboard panel: a thin widget that renders one model with a renderable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widget import Widget

from loopviz.ui.palette import Palette, palette_for

if TYPE_CHECKING:
    from loopviz.session import Session


class Panel(Widget):
    """Reads the session's models at render time; the app refreshes it when they change."""

    DEFAULT_CSS = """
    Panel {
        border: round $primary 50%;
        border-title-color: $text;
        border-title-style: bold;
        padding: 0 1;
    }
    """

    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session

    @property
    def palette(self) -> Palette:
        return palette_for(self.app.current_theme)
