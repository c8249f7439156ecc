"""The select panel: every fd the loop watches, the current or last ``select`` call and what it
returned, a short history of ready counts, and the hand-written select loop when it runs."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from loopviz.models.selector import SelectorState
from loopviz.session import RawSelect
from loopviz.ui.palette import Palette
from loopviz.ui.widgets._panel import Panel

SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int) -> str:
    """A one-line bar per value (the newest last), scaled to the largest; zero is the
    lowest bar, so an idle line still shows."""
    values = values[-width:]
    top = max(values, default=0) or 1
    return "".join(SPARK[min(7, round(v / top * 7))] for v in values)


def fd_table(
    selector: SelectorState, palette: Palette, now: float, *, max_rows: int
) -> RenderableType:
    """A row per watched fd: its label, R/W interest, how often select said it was readable or
    writable (r/w), and when last."""
    watched = selector.watched
    if not watched:
        return Text("no fds watched: nothing waits for I/O", style=palette.muted)
    table = Table(
        box=None,
        expand=True,
        pad_edge=False,
        show_edge=False,
        header_style="bold",
        padding=(0, 1),
        collapse_padding=True,
    )
    table.add_column("fd", justify="right", width=3, no_wrap=True)
    table.add_column("label", ratio=3, min_width=8, no_wrap=True, overflow="ellipsis")
    table.add_column("watch", width=5, no_wrap=True)
    table.add_column("r/w", justify="right", width=5, no_wrap=True)
    table.add_column("last r/w", ratio=2, min_width=10, no_wrap=True, overflow="ellipsis")
    shown = watched[:max_rows] if len(watched) <= max_rows else watched[: max(0, max_rows - 1)]
    for info in shown:
        interest = (info.interest or "").upper().replace("RW", "R W")
        if info.last_ready is None:
            last = Text("never", style=palette.muted)
        else:
            ago = max(0.0, now - info.last_ready)
            last = Text(f"{ago:.1f}s ago {(info.last_ready_events or '').upper()}")
        table.add_row(
            str(info.fd),
            info.label,
            Text(interest, style=palette.strong),
            str(info.ready_count),
            last,
        )
    if len(shown) < len(watched):
        table.add_row("", Text(f"… {len(watched) - len(shown)} more", style=palette.muted))
    return table


def last_select(selector: SelectorState, palette: Palette) -> Text:
    call = selector.last_select
    text = Text(overflow="fold")
    if call is None:
        return Text("no select call yet", style=palette.muted)
    timeout = "None (until I/O)" if call.timeout is None else f"{call.timeout:.3f}s"
    text.append(f"select #{call.iteration}", palette.strong)
    text.append(f"  timeout {timeout}", palette.muted)
    text.append("\n")
    if call.in_progress:
        text.append("  waiting in select…", palette.ready)
        return text
    text.append(f"  returned after {call.waited or 0:.3f}s: ", palette.muted)
    if call.ready_fds:
        ready = ", ".join(
            f"{selector.label(fd)} {READINESS.get(events, events)}" for fd, events in call.ready_fds
        )
        text.append(ready, palette.strong)
    elif call.timers_due:
        text.append(f"no fd; {call.timers_due} timer(s) due", palette.muted)
    else:
        text.append("no fd readable or writable", palette.muted)
    return text


def raw_selects(
    calls: Sequence[RawSelect], palette: Palette, *, rows: int, width: int
) -> Text | None:
    """The hand-written ``select.select`` loop of the sockets scene, when it runs: its last
    calls that fit in ``rows`` lines, oldest first, each with what it returned (on a line of
    its own when ``width`` is too narrow for both), so a class stepping through them sees
    writable -> send, the timeouts, readable -> recv."""
    if not calls or rows < 1:
        return None

    def names(entries: list[dict[str, object]]) -> str:
        return "[" + ", ".join(str(e.get("label", e.get("fd"))) for e in entries) + "]"

    lines: list[tuple[Text, Text]] = []
    for entry in calls:
        call, returned = entry.call, entry.returned
        asked = Text(f" #{call.get('call')} ", palette.muted)
        asked.append(
            f"select({names(call.get('inputs', []))}, {names(call.get('outputs', []))}, "
            f"{names(call.get('errors', []))}, {call.get('timeout')})",
            palette.strong,
        )
        if returned is None:
            answer = Text(" → waiting…", palette.ready)
        elif returned.get("timed_out"):
            answer = Text(f" → timed out after {returned.get('waited', 0):.2f}s", palette.muted)
        else:
            answer = Text(
                f" → readable {names(returned.get('readable', []))}"
                f" writable {names(returned.get('writable', []))}"
                f" after {returned.get('waited', 0):.2f}s",
                palette.strong,
            )
        lines.append((asked, answer))
    two_lines = any(len(a) + len(b) > width for a, b in lines)
    shown = lines[-max(1, rows // 2 if two_lines else rows) :]
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("thread's select calls:", palette.muted)
    for asked, answer in shown:
        text.append("\n")
        text.append_text(asked)
        if two_lines:
            text.append("\n   ")
        text.append_text(answer)
    return text


#: What select said of an fd, in words ("ready" is the queue's word on this screen).
READINESS = {"r": "readable", "w": "writable", "rw": "readable and writable"}

#: Most lines the sockets scene's own select loop gets (calls and what they returned).
RAW_SELECT_ROWS = 8

#: Loop seconds the readiness lanes span.
READY_WINDOW = 8.0


def readiness_lanes(
    selector: SelectorState, palette: Palette, now: float, width: int, *, max_lanes: int
) -> Text | None:
    """A line per fd: where in the last seconds select reported it ready (``r``, ``w``, ``b``
    for both), so a reply arriving, or a client that never waits, shows at a glance."""
    t0 = max(0.0, now - READY_WINDOW)  # the first seconds fill the lane from the left
    fds = [
        info
        for info in (*selector.retired, *selector.fds.values())
        if info.watched or (info.last_ready is not None and info.last_ready > t0)
    ][-max_lanes:]
    if not fds or max_lanes < 1:
        return None
    name_width = min(16, max(len(info.label) for info in fds)) + 1
    cells = max(10, width - name_width)
    text = Text(no_wrap=True, overflow="crop")
    text.append(
        f"{'':{name_width}}when select said readable (r) or writable (w), last {READY_WINDOW:g}s",
        palette.muted,
    )
    for info in fds:
        marks = [""] * cells
        for t, events in info.history:
            if t0 <= t <= t0 + READY_WINDOW:
                cell = min(cells - 1, int((t - t0) / READY_WINDOW * cells))
                marks[cell] = "b" if marks[cell] and marks[cell] != events else events[:1]
                if events == "rw":
                    marks[cell] = "b"
        text.append("\n")
        label = info.label if len(info.label) < name_width else info.label[: name_width - 2] + "…"
        text.append(f"{label:<{name_width}}", palette.strong if info.watched else palette.muted)
        for mark in marks:
            text.append(mark or "·", palette.lane if mark else palette.muted)
    return text


class SelectPanel(Panel):
    """Socket readiness from select."""

    DEFAULT_CSS = """
    SelectPanel { height: 1fr; }
    """

    def on_mount(self) -> None:
        self.border_title = "Select"

    def render(self) -> RenderableType:
        models = self.session.models
        selector = models.core.selector
        palette = self.palette
        height = self.content_size.height
        history = [float(count) for _, count in selector.ready_history]
        spark = Text(no_wrap=True, overflow="crop")
        spark.append("fds readable/writable per select ", palette.muted)
        spark.append(sparkline(history, max(8, self.content_size.width - 22)), palette.lane)
        parts: list[RenderableType] = [last_select(selector, palette), spark]
        lines = len(parts) + 1  # the last select call takes two lines
        watched = len(selector.watched)
        # The thread's calls get what the fd table (at least one row) leaves, up to six.
        thread_rows = min(RAW_SELECT_ROWS, height - lines - 1 - max(1, watched) - 1 - 1)
        thread = raw_selects(
            models.raw_selects, palette, rows=thread_rows, width=self.content_size.width
        )
        if thread is not None:
            parts.append(thread)
            lines += thread.plain.count("\n") + 1
        # Lanes only where the fd table leaves room (a zoomed or tall panel).
        spare = height - lines - 1 - max(1, watched) - 1
        if spare >= 3:
            lanes = readiness_lanes(
                selector,
                palette,
                models.core.loop.now,
                self.content_size.width,
                max_lanes=spare - 2,
            )
            if lanes is not None:
                parts += [Text(""), lanes]
                lines += 2 + lanes.plain.count("\n")
        rows = max(1, height - lines - 1)  # the table's header takes one
        return Group(fd_table(selector, palette, models.core.loop.now, max_rows=rows), *parts)
