"""Commands from the dashboard to the traced program, one JSON object per line.

``{"command": "pause"}``, ``resume``, ``step``, ``step_task``, ``{"command": "speed",
"value": 2.0}``, ``{"command": "act", "scene": "queue", "action": "burst"}``. A line that is not
a command is ignored: the program must never fail because of its viewer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

PAUSE, RESUME, STEP, STEP_TASK, SPEED, ACT = "pause", "resume", "step", "step_task", "speed", "act"
COMMANDS = frozenset({PAUSE, RESUME, STEP, STEP_TASK, SPEED, ACT})


def command_line(command: str, **fields: Any) -> bytes:
    if command not in COMMANDS:
        raise ValueError(f"no command {command!r}")
    return (json.dumps({"command": command, **fields}) + "\n").encode()


def parse_command(line: bytes) -> dict[str, Any] | None:
    """The command on ``line``, or None if it is not one."""
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("command") not in COMMANDS:
        return None
    return data


class Controls(Protocol):
    """What commands drive: a traced loop, or all the loops of a program (``Producer``)."""

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def step(self) -> None: ...
    def step_task(self) -> None: ...
    def set_speed(self, speed: float) -> None: ...


def apply_command(
    command: Mapping[str, Any], controls: Controls, act: Callable[[str, str], None] | None
) -> None:
    """Do what ``command`` says to ``controls``; ``act`` takes scene actions (None: there are
    no scenes, and an action does nothing)."""
    name = command["command"]
    if name == PAUSE:
        controls.pause()
    elif name == RESUME:
        controls.resume()
    elif name == STEP:
        controls.step()
    elif name == STEP_TASK:
        controls.step_task()
    elif name == SPEED:
        controls.set_speed(float(command["value"]))
    elif name == ACT and act is not None:
        act(str(command["scene"]), str(command["action"]))
    elif name not in COMMANDS:
        raise ValueError(f"no command {name!r}")
