"""The narration line: one plain sentence about the last thing the loop did."""

from __future__ import annotations

from rich.text import Text

from loopviz.ui.widgets._panel import Panel


class NarrationLine(Panel):
    DEFAULT_CSS = """
    NarrationLine { height: 2; border: none; padding: 0 1; background: $boost; }
    """

    def render(self) -> Text:
        narration = self.session.models.core.narration
        palette = self.palette
        sentences = narration.sentences
        text = Text(overflow="ellipsis")
        if not sentences:
            started = self.session.models.core.loop.iteration > 0
            text.append(
                "loopviz is starting the scenes (its own tasks are not shown)."
                if started
                else "The loop has not run anything yet.",
                palette.muted,
            )
            return text
        text.append(sentences[-1], palette.strong)
        return text
