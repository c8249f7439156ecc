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
    "manual": "manual ack: at-least-once, redelivers what a dead consumer held",
    "auto": "auto ack: acked on delivery, a dead consumer loses its message",
    "none": "no queue: the API calls the SMS sender directly",
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
    return text


def queue_view(stats: QueueStats, palette: Palette, width: int) -> RenderableType:
    if stats.started is None:
        return Text("the queue scene is not running (try: loopviz queue)", style=palette.muted)
    lines: list[RenderableType] = []
    mode = Text(no_wrap=True, overflow="ellipsis")
    mode.append("mode ", palette.muted)
    mode.append(MODE_WORDS.get(stats.mode, stats.mode), palette.strong)
    lines.append(mode)

    bar_width = max(6, min(40, width - 16))
    scale = max(10, stats.ready, stats.unacked)
    lines.append(bar("ready", stats.ready, scale, bar_width, palette.bar, palette))
    lines.append(bar("unacked", stats.unacked, scale, bar_width, palette.bar_alt, palette))

    waits = Text(no_wrap=True, overflow="ellipsis")
    age = stats.oldest_ready_age()
    waits.append("oldest ready waits ", palette.muted)
    waits.append("-" if age is None else f"{age:.1f}s", palette.strong)
    eta = stats.drain_eta
    waits.append("   drains in ", palette.muted)
    if stats.ready == 0:
        waits.append("empty", palette.strong)
    elif stats.consumers_up == 0:
        waits.append("not draining: no consumer is up", palette.failed)
    elif eta is None:
        waits.append("not draining at this rate", palette.failed)
    else:
        waits.append(f"~{eta:.0f}s", palette.strong)
    lines.append(waits)

    for group in (
        (
            ("published", stats.published, False),
            ("acked", stats.acked, False),
            ("redelivered", stats.redelivered, False),
        ),
        (
            ("duplicates", stats.duplicates, stats.duplicates > 0),
            ("lost", stats.lost, stats.lost > 0),
            ("failed requests", stats.failed_requests, stats.failed_requests > 0),
        ),
    ):
        counts = Text(no_wrap=True, overflow="ellipsis")
        for label, value, bad in group:
            counts.append(f"{label} ", palette.muted)
            counts.append(f"{value}  ", palette.failed if bad else palette.strong)
        lines.append(counts)

    balance = Text(no_wrap=True, overflow="ellipsis")
    if stats.balanced:
        balance.append("✓ balance holds: ", palette.lane)
    else:
        balance.append(" ✗ BALANCE BROKEN ", palette.warn)
        balance.append(" ")
    balance.append(
        f"{stats.published} published = {stats.acked} acked + {stats.ready} ready"
        f" + {stats.unacked} unacked + {stats.lost} lost",
        palette.muted,
    )
    lines.append(balance)

    consumers = Text(no_wrap=True, overflow="ellipsis")
    consumers.append("consumers ", palette.muted)
    if not stats.consumers:
        consumers.append("none", palette.failed)
    for view in stats.consumers.values():
        up = view.state != "down"
        consumers.append(
            f"#{view.id} {'▲ up' if up else '▼ DOWN'}", palette.strong if up else palette.failed
        )
        consumers.append(f" {view.activity if up else ''}  ".replace("  ", " ", 1), palette.muted)
    lines.append(consumers)

    spark_width = max(8, (width - 34) // 2)
    rates = Text(no_wrap=True, overflow="crop")
    rates.append("publish ", palette.muted)
    rates.append(
        sparkline([float(n) for n in stats.series("publish", buckets=spark_width)], spark_width),
        palette.bar,
    )
    rates.append(f" {stats.publish_rate:4.1f}/s   ack ", palette.muted)
    rates.append(
        sparkline([float(n) for n in stats.series("ack", buckets=spark_width)], spark_width),
        palette.lane,
    )
    rates.append(f" {stats.ack_rate:4.1f}/s", palette.muted)
    lines.append(rates)
    return Group(*lines)


class QueuePanel(Panel):
    """A message queue filling and draining."""

    DEFAULT_CSS = """
    QueuePanel { height: 1fr; }
    """

    def on_mount(self) -> None:
        self.border_title = "Queue"
        self.border_subtitle = "d down/up  a add  x remove  b burst  m mode"

    def render(self) -> RenderableType:
        return queue_view(self.session.models.queue, self.palette, self.content_size.width)
