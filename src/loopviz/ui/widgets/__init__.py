"""The dashboard's widgets, one per module; each renders one model."""

from loopviz.ui.widgets._loop_bar import LoopBar
from loopviz.ui.widgets._narration import NarrationLine
from loopviz.ui.widgets._output_panel import OutputPanel
from loopviz.ui.widgets._panel import Panel
from loopviz.ui.widgets._problem_bar import ProblemBar
from loopviz.ui.widgets._queue_panel import QueuePanel
from loopviz.ui.widgets._select_panel import SelectPanel
from loopviz.ui.widgets._tasks_panel import TasksPanel

__all__ = [
    "LoopBar",
    "NarrationLine",
    "OutputPanel",
    "Panel",
    "ProblemBar",
    "QueuePanel",
    "SelectPanel",
    "TasksPanel",
]
