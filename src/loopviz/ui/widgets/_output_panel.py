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
        models = self.session.models
        problems = models.problems[-2:]
        parts: list[RenderableType] = []
        if models.results:  # pinned: a result must not scroll away with the output
            pinned = Text(no_wrap=True, overflow="ellipsis")
            pinned.append("finished in (loop time): ", palette.muted)
            for number, (what, took) in enumerate(models.results.items()):
                pinned.append("  " if number else "")
                pinned.append(f"{what} ", palette.strong)
                pinned.append(f"{took:.2f} s", palette.highlight)
            parts.append(pinned)
            height -= 1
        for problem in problems:  # a failure is never cut: it wraps
            line = Text(overflow="fold")
            line.append(f"× {problem.scene} failed: ", palette.failed)
            line.append(problem.error, palette.strong)
            parts.append(line)
        lines = list(models.output)[-max(1, height - len(problems)) :]
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
