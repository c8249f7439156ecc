"""The help screen: every key, and what pressing it shows about the event loop."""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, str, str]] = [
    (
        "space",
        "pause / resume",
        "Stops the loop between steps. Loop time stands still: no timer fires, no task runs.",
    ),
    (
        "n  →",
        "step one loop iteration",
        "One turn of the loop: wait in select, fire due timers, run every callback in the run "
        "queue once.",
    ),
    (
        "t",
        "run to the next task switch",
        "Runs until one task step ends: the task ran until its next await and gave control back.",
    ),
    (
        "+  -",
        "faster / slower (0.05x to 20x)",
        "The loop's clock is dilated: at 0.1x, asyncio.sleep(0.25) really takes 2.5 s.",
    ),
    (
        "1 2 3",
        "zoom the tasks / select / queue panel",
        "One panel fills the screen, for a class to read. 0 shows all of them again.",
    ),
    ("0", "show all panels", ""),
    (
        "d",
        "take the SMS consumer down / bring it back",
        "While it is down, requests keep arriving and wait in the queue. With manual ack nothing "
        "is lost; auto ack loses the ones it held; with no queue, requests fail meanwhile.",
    ),
    (
        "a  x",
        "add / remove a consumer",
        "Competing consumers share the queue: the backlog drains faster.",
    ),
    ("b", "burst of requests", "Many requests at once: the queue absorbs the spike."),
    (
        "m",
        "cycle ack mode: manual, auto, no queue",
        "Manual ack redelivers what a dying consumer held; auto ack loses it; "
        "with no queue, requests fail while the consumer is down.",
    ),
    ("r", "restart the scenes", "Everything starts again from loop time 0."),
    ("s", "save the screen as SVG", "A new loopviz-<date>-<time>.svg in the current folder."),
    ("?", "this help", ""),
    ("q  ctrl+c", "quit", "Stops the traced loop, closes every socket, restores the terminal."),
]


#: Every column and word the panels show, in the panels' order: (where, term, what it means).
GLOSSARY: list[tuple[str, str, str]] = [
    (
        "loop bar",
        "phase",
        "What the loop is doing: wait in select, fire timers, run callbacks (the run queue).",
    ),
    ("loop bar", "run queue", "Callbacks the loop runs next (asyncio's ready queue)."),
    ("loop bar", "timers", "Timers scheduled (sleep, call_later); 'next at' is the first due."),
    ("loop bar", "FROZEN", "A step has held the loop this long (loop seconds): nothing else runs."),
    ("loop bar", "stalls", "Steps that blocked the loop longer than the stall limit."),
    (
        "tasks",
        "state",
        "▶ running: its step runs now. ● runnable: in the run queue. ○ waiting: "
        "suspended at an await. ✓ done, × failed, ∅ cancelled.",
    ),
    ("tasks", "awaits", "What it waits for (a sleep, a future, another task, a socket)."),
    ("tasks", "suspended at", "The await it stopped at, and its file:line."),
    ("tasks", "steps", "How many times the loop ran it: each step runs to its next await."),
    ("tasks", "busy / waiting", "Loop time spent running its steps / suspended."),
    (
        "tasks",
        "lanes",
        "When each task ran (█), blocked the loop (▓); digits: tasks that took "
        "turns within one column, in the order they ran. The loop runs one at a time.",
    ),
    ("select", "fd / label", "A socket the loop watches, by number and name."),
    ("select", "watch", "What select waits for on it: R readable (data to read), W writable."),
    (
        "select",
        "r/w / last r/w",
        "How often select said it was readable or writable, and when last.",
    ),
    ("select", "thread's select calls", "The notes' own select.select loop, call by call."),
    ("queue", "ready", "Messages in the queue waiting for a consumer (RabbitMQ's word)."),
    ("queue", "unacked", "Delivered to a consumer, not acknowledged yet."),
    ("queue", "ack", "The consumer's 'done': only then does the broker delete the message."),
    (
        "queue",
        "manual ack",
        "Ack after the work: a consumer that dies mid-way gets its messages "
        "redelivered to another, so none is lost (at-least-once).",
    ),
    (
        "queue",
        "at-least-once",
        "Every message is handled, some twice: a consumer that died after "
        "the work but before its ack causes a duplicate.",
    ),
    ("queue", "auto ack", "Acked on delivery: what a dying consumer held is lost."),
    (
        "queue",
        "no queue",
        "The producer calls the consumer directly: while it is down, requests fail.",
    ),
    ("queue", "redelivered / duplicates / lost / failed requests", "Counted as they happen."),
    ("queue", "balance holds", "published = acked + ready + unacked + lost, always."),
    (
        "queue",
        "oldest waits / drains in",
        "Age of the oldest ready message; when the backlog empties at the current ack rate.",
    ),
]


def help_table(key_colour: str | None = None) -> Table:
    """Two columns, so the text keeps its width at 80 columns: the key, then what it does (bold)
    and, below, what it shows about the event loop."""
    table = Table(box=None, expand=True, show_header=False, pad_edge=False, padding=(0, 1, 1, 0))
    table.add_column("key", no_wrap=True, width=10)
    table.add_column("does / shows", ratio=1)
    for key, does, teaches in KEYS:
        text = Text()
        text.append(does, style="bold")
        if teaches:
            text.append("\n")
            text.append(teaches, style="italic")
        table.add_row(Text(key, style=Style(color=key_colour, bold=True)), text)
    return table


def glossary_table() -> Table:
    """What every panel's columns and words mean, grouped by panel."""
    table = Table(box=None, expand=True, show_header=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("term", no_wrap=False, width=22)
    table.add_column("means", ratio=1)
    shown = None
    for where, term, means in GLOSSARY:
        if where != shown:
            shown = where
            table.add_row(Text(f"\n{where}", style="bold underline"), Text(""))
        table.add_row(Text(term, style="bold"), Text(means))
    return table


class HelpScreen(ModalScreen[None]):
    """Keys and what they teach. Any of escape, ? or q closes it; arrows and pages scroll it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: thick $accent; background: $surface; padding: 0 2;
        border-title-align: center; border-subtitle-align: center;
        border-title-style: bold;
    }
    HelpScreen.-narrow > VerticalScroll {
        width: 100%; max-height: 100%; padding: 0 1;
    }
    """
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (100, "-wide"),
    ]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "close help"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "loopviz keys"
            box.border_subtitle = "↑ ↓ PgUp PgDn scroll · esc, ? or q close"
            yield Static(help_table(self.app.current_theme.accent))
            yield Static(Text("What the panels say", style="bold"))
            yield Static(glossary_table())
            yield Static(
                Text(
                    "Everything on screen comes from the real asyncio loop: tasks are real "
                    "tasks, fds are real sockets, the queue is a real broker on the loop.",
                    style="italic",
                )
            )

    def action_close(self) -> None:
        self.dismiss()
