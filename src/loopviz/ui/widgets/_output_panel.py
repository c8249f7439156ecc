"""What the tasks printed, each line attributed to the task that printed it."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from loopviz.ui.widgets._panel import Panel


class OutputPanel(Panel):
    DEFAULT_CSS = """
    OutputPanel { height: 6; }
    """

    def on_mount(self) -> None:
        self.border_title = "Output"

    def render(self) -> Table:
        palette = self.palette
        lines = list(self.session.models.output)[-max(1, self.content_size.height) :]
        problems = self.session.models.problems
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(width=6, justify="right", no_wrap=True)
        table.add_column(width=18, no_wrap=True, overflow="ellipsis")
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        for problem in problems[-2:]:
            table.add_row(
                "",
                Text(f"{problem.scene} failed", palette.failed),
                Text(problem.error, palette.failed),
            )
        if not lines and not problems:
            table.add_row("", Text("nothing printed yet", palette.muted), "")
        for line in lines[-max(1, self.content_size.height - len(problems[-2:])) :]:
            shown = line.text.rstrip("\n").replace("\n", " ⏎ ")
            table.add_row(
                Text(f"{line.t:6.2f}", palette.muted),
                Text(line.task or "(loop)"),
                Text(shown, palette.strong),
            )
        return table
