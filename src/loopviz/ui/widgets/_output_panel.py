"""What the tasks printed, each line attributed to the task that printed it."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from loopviz.ui.widgets._panel import Panel


class OutputPanel(Panel):
    DEFAULT_CSS = """
    OutputPanel { height: 6; }
    """

    def on_mount(self) -> None:
        self.border_title = "Output"

    def render(self) -> RenderableType:
        palette = self.palette
        height = max(1, self.content_size.height)
        problems = self.session.models.problems[-2:]
        parts: list[RenderableType] = []
        for problem in problems:  # a failure is never cut: it wraps
            line = Text(overflow="fold")
            line.append(f"× {problem.scene} failed: ", palette.failed)
            line.append(problem.error, palette.strong)
            parts.append(line)
        lines = list(self.session.models.output)[-max(1, height - len(problems)) :]
        if not lines:
            if not problems:
                parts.append(Text("nothing printed yet", palette.muted))
            return Group(*parts)
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(width=6, justify="right", no_wrap=True)
        table.add_column(width=18, no_wrap=True, overflow="ellipsis")
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        for line in lines:
            shown = line.text.rstrip("\n").replace("\n", " ⏎ ")
            table.add_row(
                Text(f"{line.t:6.2f}", palette.muted),
                Text(line.task or "(loop)"),
                Text(shown, palette.strong),
            )
        parts.append(table)
        return Group(*parts)
