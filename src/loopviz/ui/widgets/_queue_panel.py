"""The queue panel: ready and unacked as bars, the counters, every consumer's state, publish and
ack rates, time to drain, and whether the books balance."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from loopviz.models.queue_stats import QueueStats
from loopviz.ui.palette import Palette
from loopviz.ui.widgets._panel import Panel
from loopviz.ui.widgets._select_panel import sparkline

MODE_WORDS = {
    "manual": ("manual ack", "at-least-once: a dead consumer's messages are redelivered"),
    "auto": ("auto ack", "acked on delivery: a dead consumer loses its message"),
    "none": ("no queue", "the API calls the SMS sender directly; fails while it is down"),
}


def bar(label: str, value: int, scale: int, width: int, style: object, palette: Palette) -> Text:
    text = Text(no_wrap=True, overflow="crop")
    text.append(f"{label:<8}", palette.strong)
    filled = 0 if scale <= 0 else min(width, round(value / scale * width))
    if value and not filled:
        filled = 1
    text.append("█" * filled, style)  # type: ignore[arg-type]
    text.append("░" * (width - filled), palette.muted)
    text.append(f" {value}", palette.strong)
    text.append(f"/{scale}", palette.muted)
    return text


#: Ready messages listed under the counters (a short panel cuts them first).
MESSAGES_SHOWN = 5

#: The bars' full lengths: the first at least as large as the biggest backlog so far.
SCALES = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


def bar_scale(peak: int) -> int:
    """A round full length for the bars, never below ``peak`` (a bar is never full before the
    backlog reaches it: it used to be full from 10 messages up)."""
    for scale in SCALES:
        if peak <= scale:
            return scale
    return peak


def counters(items: list[tuple[str, int, bool]], palette: Palette) -> Text:
    """``label value`` pairs; a value that means trouble is marked with ``!`` as well as colour."""
    text = Text(overflow="fold")
    for i, (label, value, bad) in enumerate(items):
        if i:
            text.append("  ")
        text.append(f"{label} ", palette.muted)
        text.append(f"{value}{'!' if bad else ''}", palette.failed if bad else palette.strong)
    return text


def queue_view(stats: QueueStats, palette: Palette, width: int) -> RenderableType:
    """Most important first: a short panel cuts the last lines (the rates), not the counts."""
    if stats.started is None:
        return Text("the queue scene is not running (try: loopviz queue)", style=palette.muted)
    lines: list[RenderableType] = []
    name, meaning = MODE_WORDS.get(stats.mode, (stats.mode, ""))
    mode = Text()
    mode.append("mode ", palette.muted)
    mode.append(name, palette.strong)
    if meaning:
        mode.append(f": {meaning}", palette.muted)
    lines.append(mode)

    bar_width = max(6, min(40, width - 13))
    scale = bar_scale(stats.peak)
    lines.append(bar("ready", stats.ready, scale, bar_width, palette.bar, palette))
    lines.append(bar("unacked", stats.unacked, scale, bar_width, palette.bar_alt, palette))

    lines.append(
        counters(
            [
                ("published", stats.published, False),
                ("acked", stats.acked, False),
                ("redelivered", stats.redelivered, False),
            ],
            palette,
        )
    )
    lines.append(
        counters(
            [
                ("duplicates", stats.duplicates, stats.duplicates > 0),
                ("lost", stats.lost, stats.lost > 0),
                ("failed requests", stats.failed_requests, stats.failed_requests > 0),
            ],
            palette,
        )
    )

    balance = Text()
    if stats.balanced:
        balance.append("✓ balance holds: ", palette.lane)
    else:
        balance.append(" × BALANCE BROKEN ", palette.warn)
        balance.append(" ")
    balance.append(
        f"{stats.published} published = {stats.acked} acked + {stats.ready} ready"
        f" + {stats.unacked} unacked + {stats.lost} lost",
        palette.muted,
    )
    lines.append(balance)

    consumers = Text()
    consumers.append("consumers", palette.muted)
    if not stats.consumers:
        consumers.append(" none", palette.failed)
    for view in stats.consumers.values():
        up = view.state != "down"
        consumers.append("  ")
        consumers.append(
            f"#{view.id} {'▲ up' if up else '▼ DOWN'}", palette.strong if up else palette.failed
        )
        if up:
            consumers.append(f" {view.activity}", palette.muted)
    lines.append(consumers)

    waits = Text(no_wrap=True, overflow="ellipsis")
    age = stats.oldest_ready_age()
    waits.append("oldest waits ", palette.muted)
    waits.append("-" if age is None else f"{age:.1f}s", palette.strong)
    eta = stats.drain_eta
    waits.append("  drains in ", palette.muted)
    if stats.ready == 0:
        waits.append("empty", palette.strong)
    elif stats.consumers_up == 0:
        waits.append("never: no consumer is up", palette.failed)
    elif eta is None:
        waits.append("never at this rate", palette.failed)
    else:
        waits.append(f"~{eta:.0f}s", palette.strong)
    lines.append(waits)

    # "publish " + spark + " 12.3/s  ack " + spark + " 12.3/s"
    spark_width = max(4, min(30, (width - 27) // 2))
    rates = Text(no_wrap=True, overflow="crop")
    rates.append("publish ", palette.muted)
    rates.append(
        sparkline([float(n) for n in stats.series("publish", buckets=spark_width)], spark_width),
        palette.bar,
    )
    rates.append(f" {stats.publish_rate:4.1f}/s  ack ", palette.muted)
    rates.append(
        sparkline([float(n) for n in stats.series("ack", buckets=spark_width)], spark_width),
        palette.lane,
    )
    rates.append(f" {stats.ack_rate:4.1f}/s", palette.muted)
    lines.append(rates)
    held = stats.held()
    if held:
        lines.append(Text("in a sender's hands:", palette.muted))
        for msg, request, consumer in held[:MESSAGES_SHOWN]:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f" #{msg} ", palette.strong)
            line.append(f"held by #{consumer}  ", palette.strong)
            line.append(f"{request.purpose} {request.phone} code {request.code}", palette.muted)
            lines.append(line)
    waiting = stats.waiting()
    if waiting:
        lines.append(Text("waiting in the queue, oldest first:", palette.muted))
        for msg, request in waiting[:MESSAGES_SHOWN]:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f" #{msg} ", palette.strong)
            line.append(f"{request.purpose} {request.phone} code {request.code}", palette.muted)
            lines.append(line)
        if len(waiting) > MESSAGES_SHOWN:
            lines.append(Text(f" … {len(waiting) - MESSAGES_SHOWN} more", palette.muted))
    return Group(*lines)


class QueuePanel(Panel):
    """A message queue filling and draining."""

    DEFAULT_CSS = """
    QueuePanel { height: 1fr; }
    """

    def on_mount(self) -> None:
        self.border_title = "Queue"
        self.border_subtitle = "d down/up a add x remove b burst m ack"

    def render(self) -> RenderableType:
        return queue_view(self.session.models.queue, self.palette, self.content_size.width)
