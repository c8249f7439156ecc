"""The tasks panel: a row per task (state, what it awaits, where it is suspended) and, below,
a lane per task over the last seconds of loop time marking when each one ran."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from loopviz.models.tasks import TaskTable
from loopviz.models.timeline import Timeline
from loopviz.ui.palette import STATE_SYMBOL, Palette
from loopviz.ui.widgets._panel import Panel

#: Loop seconds the lanes span: short enough that steps 0.25 s apart stay apart.
LANE_WINDOW = 4.0
LANE_RUN = "█"
LANE_STALL = "▓"
LANE_IDLE = "·"


def _seconds(value: float) -> str:
    if value >= 10:
        return f"{value:.0f}s"
    if value >= 0.1:
        return f"{value:.1f}s"
    return f"{value * 1000:.0f}ms"


def tasks_table(tasks: TaskTable, palette: Palette, width: int, *, max_rows: int) -> Table:
    """The task rows; on a narrow panel the timing columns go first."""
    wide = width >= 90
    roomy = width >= 70
    table = Table(box=None, expand=True, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("state", no_wrap=True, width=11)
    table.add_column("task", no_wrap=True, ratio=3, min_width=12, overflow="ellipsis")
    table.add_column("awaits", no_wrap=True, ratio=3, min_width=10, overflow="ellipsis")
    table.add_column("suspended at", no_wrap=True, ratio=6, overflow="ellipsis")
    if roomy:
        table.add_column("steps", justify="right", no_wrap=True, width=5)
    if wide:
        table.add_column("busy", justify="right", no_wrap=True, width=6)
        table.add_column("waiting", justify="right", no_wrap=True, width=7)
    rows = tasks.rows()
    # Show the live tasks first when there is no room for all; the finished ones fade out.
    if len(rows) > max_rows:
        live = [task for task in rows if not task.finished]
        rows = (live + [task for task in rows if task.finished])[:max_rows]
    for task in rows:
        style = palette.state(task.state)
        symbol = STATE_SYMBOL.get(task.state, " ")
        state = Text(f"{symbol} {task.state}", style=style)
        row_style = palette.strong if task.state == "running" else None
        if task.finished:
            awaits = Text(task.outcome or task.state, style=palette.muted)
            where = Text(task.detail or "", style=palette.muted)
        else:
            awaits = Text(task.awaits or "", style=palette.strong if task.awaits else palette.muted)
            where = Text()
            if task.source:
                where.append(f"{task.line} ", style=palette.muted)
                where.append(task.source, style=palette.strong)
            elif task.state == "ready":
                where.append("not started yet", style=palette.muted)
        cells: list[RenderableType] = [state, Text(task.name), awaits, where]
        if roomy:
            cells.append(str(task.steps))
        if wide:
            cells += [_seconds(task.busy_at(tasks.now)), _seconds(task.wait_at(tasks.now))]
        table.add_row(*cells, style=row_style)
    if not rows:
        table.add_row(Text("no tasks yet", style=palette.muted))
    return table


def lanes(timeline: Timeline, palette: Palette, width: int, *, max_lanes: int) -> Text:
    """One line per task: where it ran (█) in the window, and where the loop stalled (▓)."""
    t_now = timeline.now
    recent = [
        lane
        for lane in timeline.rows()
        if lane.running_since is not None or lane.spans(t_now - LANE_WINDOW, t_now)
    ]
    rows = (recent or timeline.rows())[:max_lanes]
    name_width = min(18, max((len(lane.name) for lane in rows), default=4)) + 1
    cells = max(10, width - name_width - 1)
    t1 = timeline.now
    t0 = t1 - min(LANE_WINDOW, timeline.window)
    stalls = timeline.stall_cells(t0, t1, cells)
    text = Text(no_wrap=True, overflow="crop")
    text.append(f"{'':{name_width}}", palette.muted)
    text.append(f"when each task ran, last {t1 - t0:g}s of loop time", palette.muted)
    text.append(f" (now {t1:.2f}s)".rjust(max(0, cells - 38)), palette.muted)
    for lane in rows:
        text.append("\n")
        name = lane.name if len(lane.name) < name_width else lane.name[: name_width - 2] + "…"
        running = timeline.running == lane.task
        text.append(f"{name:<{name_width}}", palette.strong if running else None)
        marks = timeline.lane_cells(lane.task, t0, t1, cells)
        for ran, stalled in zip(marks, stalls, strict=True):
            if ran and stalled:
                text.append(LANE_STALL, palette.failed)
            elif ran:
                text.append(LANE_RUN, palette.lane)
            else:
                text.append(LANE_IDLE, palette.muted)
    return text


class TasksPanel(Panel):
    """Who runs, who waits."""

    DEFAULT_CSS = """
    TasksPanel { height: 1fr; }
    """

    def on_mount(self) -> None:
        self.border_title = "Tasks"
        self.border_subtitle = "▶ running  ● ready  ○ waiting  ✓ done"

    def render(self) -> RenderableType:
        core = self.session.models.core
        palette = self.palette
        width = self.content_size.width
        height = self.content_size.height
        lane_lines = min(8, max(2, height // 3))
        table_rows = max(2, height - lane_lines - 3)
        return Group(
            tasks_table(core.tasks, palette, width, max_rows=table_rows),
            Text(""),
            lanes(core.timeline, palette, width, max_lanes=lane_lines - 1),
        )
