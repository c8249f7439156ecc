"""Models: plain Python state folded from events (no Textual imports).

Each model has ``apply(event)``; the same code serves the live view, replay from JSONL and tests.
"""

from loopviz.models.loop_state import LoopState
from loopviz.models.narration import Narration
from loopviz.models.queue_stats import QueueStats
from loopviz.models.replay import Models, fold, load_models
from loopviz.models.selector import SelectorState
from loopviz.models.tasks import TaskTable
from loopviz.models.timeline import Timeline

__all__ = [
    "LoopState",
    "Models",
    "Narration",
    "QueueStats",
    "SelectorState",
    "TaskTable",
    "Timeline",
    "fold",
    "load_models",
]
