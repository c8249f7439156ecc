"""The tasks panel: a row per task (state, what it awaits, where it is suspended) and, below,
a lane per task over the last seconds of loop time marking when each one ran."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from loopviz.models.tasks import TaskInfo, TaskTable
from loopviz.models.timeline import Lane, Timeline
from loopviz.ui.palette import STATE_SYMBOL, STATE_WORD, Palette
from loopviz.ui.widgets._panel import Panel

#: Loop seconds the lanes span: short enough that steps 0.25 s apart stay apart.
LANE_WINDOW = 4.0
LANE_RUN = "█"
LANE_STALL = "▓"
LANE_IDLE = "·"
#: Said over the lanes when some column holds more than one task's turn.
TURNS_LEGEND = "  1 2: took turns, in this order"


def _seconds(value: float) -> str:
    if value >= 10:
        return f"{value:.0f}s"
    if value >= 0.1:
        return f"{value:.1f}s"
    return f"{value * 1000:.0f}ms"


#: Panel widths (content columns) from which the extra columns appear.
STEPS_FROM = 64
TIMES_FROM = 96
#: How the columns give way on a narrow panel, in order: (column, down to this width) until the
#: suspended line (its code and its file:line) fits whole. What a task awaits is also in that
#: line, so that column gives way first, and then goes; a task's name keeps 14 columns (a line
#: longer than what is left is cut at the end of its code).
SQUEEZE = (
    ("awaits", 12),
    ("awaits", 8),
    ("name", 14),
)
#: The most the suspended line asks for; longer ones are cut at the end of the code.
WHERE_MAX = 48
#: Widths of the extra columns: steps; steps, busy and waiting.
EXTRAS_WIDTH = {0: 0, 1: 6, 3: 20}


def _state_cell(state: str) -> str:
    return f"{STATE_SYMBOL.get(state, ' ')} {STATE_WORD.get(state, state)}"


def where_width(rows: list[TaskInfo]) -> int:
    """Columns the longest suspended line takes whole: ``code  file:line``."""
    return min(
        WHERE_MAX,
        max([len("suspended at")] + [len(_where_text(t)) for t in rows if t.source]),
    )


def _where_text(task: TaskInfo) -> str:
    return f"{task.source}  {task.line}"


def column_widths(
    rows: list[TaskInfo], width: int, extras_w: int, where_w: int
) -> tuple[int, int, int]:
    """Widths of the state, task and awaits columns: as wide as their longest entry (within
    bounds), squeezed as ``SQUEEZE`` says until the suspended line has ``where_w`` columns."""
    state_w = max([len("state")] + [len(_state_cell(task.state)) for task in rows])
    widths = {
        "name": min(20, max([4] + [len(task.name) for task in rows])),
        "awaits": min(
            18, max([6] + [len(task.awaits or task.outcome or task.state) for task in rows])
        ),
    }
    avail = width - 3 - state_w - extras_w  # three one-column gaps

    for column, floor in SQUEEZE:
        short = where_w - (avail - widths["name"] - widths["awaits"])
        if short > 0:
            widths[column] = max(min(floor, widths[column]), widths[column] - short)
    if where_w > avail - widths["name"] - widths["awaits"]:
        widths["awaits"] = 0  # still short: the awaits column goes (its call is in the line)
    return state_w, widths["name"], widths["awaits"]


def extras_for(rows: list[TaskInfo], width: int) -> int:
    """How many extra columns fit (3, 1 or 0) with the suspended line whole: they are the
    first to go, before any of it is cut."""
    where_w = where_width(rows)
    for extras in (3, 1, 0):
        if width < (TIMES_FROM if extras == 3 else STEPS_FROM if extras == 1 else 0):
            continue
        state_w, name_w, awaits_w = column_widths(rows, width, EXTRAS_WIDTH[extras], where_w)
        gaps = 3 if awaits_w else 2
        if (
            state_w + name_w + awaits_w + gaps + EXTRAS_WIDTH[extras] + where_w <= width
            or not extras
        ):
            return extras
    return 0


def pick_rows(rows: list[TaskInfo], max_rows: int) -> list[TaskInfo]:
    """All the rows if they fit; else the liveliest (running, ready, then the most stepped),
    still in the order the tasks appeared, so rows do not jump about."""
    if len(rows) <= max_rows:
        return rows
    rank = {"running": 0, "ready": 1, "waiting": 2}
    keep = sorted(
        range(len(rows)),
        key=lambda i: (rank.get(rows[i].state, 3), -rows[i].steps, i),
    )[: max(0, max_rows)]
    return [rows[i] for i in sorted(keep)]


def tasks_table(
    tasks: TaskTable,
    palette: Palette,
    width: int,
    *,
    max_rows: int,
    frozen: int | None = None,
) -> Table:
    """The task rows, the running one highlighted. The suspended source line comes before its
    file and line number, so on a narrow panel the location is cut, not the code. ``frozen``
    is a task whose step is holding the loop right now: it is shown running, blocking."""
    rows = pick_rows(tasks.rows(), max_rows)
    extras = extras_for(rows, width)
    state_w, name_w, awaits_w = column_widths(rows, width, EXTRAS_WIDTH[extras], where_width(rows))
    table = Table(
        box=None,
        expand=True,
        pad_edge=False,
        show_edge=False,
        header_style="bold",
        padding=(0, 1),
        collapse_padding=True,
    )
    table.add_column("state", no_wrap=True, width=state_w)
    table.add_column("task", no_wrap=True, width=name_w, overflow="ellipsis")
    if awaits_w:
        table.add_column("awaits", no_wrap=True, width=awaits_w, overflow="ellipsis")
    table.add_column("suspended at", no_wrap=True, ratio=1, overflow="ellipsis")
    if extras >= 1:
        table.add_column("steps", justify="right", no_wrap=True, width=5)
    if extras >= 3:
        table.add_column("busy", justify="right", no_wrap=True, width=6)
        table.add_column("waiting", justify="right", no_wrap=True, width=7)
    for task in rows:
        blocking = task.id == frozen
        shown_state = "running" if blocking else task.state
        state = Text(_state_cell(shown_state), style=palette.state(shown_state))
        running = shown_state == "running"
        if blocking:
            awaits = Text("(blocks)", style=palette.failed)
            where = Text("in a blocking call: the loop is frozen", style=palette.failed)
        elif task.finished:
            awaits = Text(task.outcome or task.state, style=palette.muted)
            where = Text(task.detail or "", style=palette.muted)
        else:
            awaits = Text(task.awaits or "", style=palette.strong if task.awaits else palette.muted)
            where = Text()
            if task.source:
                where.append(task.source, style=palette.strong)
                where.append(f"  {task.line}", style=palette.muted)
            elif task.state == "ready":
                where.append("not started", style=palette.muted)
        name = Text(task.name, style=palette.highlight if running else palette.strong)
        cells: list[RenderableType] = (
            [state, name, awaits, where] if awaits_w else [state, name, where]
        )
        if extras >= 1:
            cells.append(str(task.steps))
        if extras >= 3:
            cells += [_seconds(task.busy_at(tasks.now)), _seconds(task.wait_at(tasks.now))]
        table.add_row(*cells)
    if not rows:
        table.add_row(Text("no tasks yet", style=palette.muted))
    return table


def recent_lanes(timeline: Timeline) -> list[Lane]:
    """The lanes with something to show in the window (all of them before anything ran); the
    ones that ran more than once come first (a task that only started another is less to see),
    each group in the order the tasks appeared."""
    t_now = timeline.now
    runs: dict[int, int] = {}
    for lane in timeline.rows():
        spans = len(lane.spans(t_now - LANE_WINDOW, t_now))
        if spans:
            runs[lane.task] = spans
    if not runs:
        return timeline.rows()
    recent = [lane for lane in timeline.rows() if lane.task in runs]
    return sorted(recent, key=lambda lane: runs[lane.task] < 2)


def lanes(timeline: Timeline, palette: Palette, width: int, *, max_lanes: int) -> Text:
    """One line per task: where it ran (█) in the window, and where it froze the loop (▓)."""
    rows = recent_lanes(timeline)[: max(0, max_lanes)]
    name_width = min(18, max((len(lane.name) for lane in rows), default=4)) + 1
    cells = max(10, width - name_width)
    t1 = timeline.now
    t0 = t1 - min(LANE_WINDOW, timeline.window)
    stalls = timeline.stall_cells(t0, t1, cells)
    turns = timeline.turns(t0, t1, cells)
    shared = any(place > 1 for places in turns.values() for place in places)
    text = Text(no_wrap=True, overflow="ellipsis")
    header = f"{t1 - t0:g}s of loop time to {t1:.2f}s  "
    legend = len(LANE_RUN + " ran  " + LANE_STALL + " blocked") + (
        len(TURNS_LEGEND) if shared else 0
    )
    if name_width + len(header) + legend <= width:  # over the lanes if it fits, else from the left
        text.append(" " * name_width)
    text.append(header, palette.muted)
    text.append(LANE_RUN, palette.lane)
    text.append(" ran  ", palette.muted)
    text.append(LANE_STALL, palette.failed)
    text.append(" blocked", palette.muted)
    if shared:
        text.append(TURNS_LEGEND, palette.muted)
    # Columns where one task ran by itself (drawn as a block, not a place in an order).
    alone = [not any(places[i] > 1 for places in turns.values()) for i in range(cells)]
    for lane in rows:
        text.append("\n")
        name = lane.name if len(lane.name) < name_width else lane.name[: name_width - 2] + "…"
        running = timeline.running == lane.task
        text.append(f"{name:<{name_width}}", palette.highlight if running else palette.strong)
        places = turns.get(lane.task) or [0] * cells
        for place, stalled, only in zip(places, stalls, alone, strict=True):
            if place and stalled:
                text.append(LANE_STALL, palette.failed)
            elif place and only:
                text.append(LANE_RUN, palette.lane)
            elif place:  # took turns with others in this column: say in which order
                text.append(str(place) if place < 10 else "+", palette.lane_turn)
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
        self.border_subtitle = "▶ running  ● runnable  ○ waiting  ✓ done  × failed"

    def render(self) -> RenderableType:
        core = self.session.models.core
        palette = self.palette
        width = self.content_size.width
        height = self.content_size.height
        table_need = len(core.tasks.rows()) + 1  # with its header
        lanes_need = len(recent_lanes(core.timeline)) + 1
        gap = table_need + 1 + lanes_need <= height
        if gap:
            table_rows, lane_rows = table_need, height - table_need - 1
        else:  # share: the lanes keep a third (at least their header and two lanes)
            lane_rows = min(lanes_need, max(3, height // 3))
            table_rows = max(2, min(table_need, height - lane_rows))
            lane_rows = max(lane_rows, height - table_rows)
        freeze = self.session.freeze()
        parts: list[RenderableType] = [
            tasks_table(core.tasks, palette, width, max_rows=table_rows - 1, frozen=freeze.task_id)
        ]
        if gap:
            parts.append(Text(""))
        parts.append(lanes(core.timeline, palette, width, max_lanes=lane_rows - 1))
        return Group(*parts)
