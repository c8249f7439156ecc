"""The problem bar: a scene that failed, said plainly, while the other scenes keep running."""

from __future__ import annotations

from rich.text import Text

from loopviz.ui.widgets._panel import Panel


class ProblemBar(Panel):
    """Hidden until a scene fails; then the last failure, in words, with how to recover."""

    DEFAULT_CSS = """
    ProblemBar { height: auto; max-height: 2; border: none; padding: 0 1; display: none; }
    ProblemBar.-shown { display: block; }
    """

    def render(self) -> Text:
        problems = self.session.models.problems
        palette = self.palette
        text = Text(overflow="ellipsis")
        if not problems:
            return text
        last = problems[-1]
        text.append(" × SCENE FAILED ", palette.warn)
        text.append(f" {last.scene}: ", palette.failed)
        text.append(last.error, palette.strong)
        more = len(problems) - 1
        tail = f" ({more} more in Output)" if more else ""
        text.append(f"{tail}. The other scenes keep running; r restarts.", palette.muted)
        return text
