"""The built-in scenes, by name (imported on first use, so one scene's import cost or fault
never touches the others)."""

from __future__ import annotations

import importlib

from loopviz.scenes.base import Scene, SceneError

#: name -> "module:Class"; the order is the dashboard's order.
SCENE_PATHS: dict[str, str] = {
    "tasks": "loopviz.scenes.tasks:TasksScene",
    "sockets": "loopviz.scenes.sockets:SocketsScene",
    "queue": "loopviz.scenes.queue:QueueScene",
}


def scene_class(name: str) -> type[Scene]:
    """The scene class called ``name``; SceneError (one line, for the user) if there is none."""
    path = SCENE_PATHS.get(name)
    if path is None:
        raise SceneError(f"unknown scene {name!r}; choose from {', '.join(SCENE_PATHS)}")
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise SceneError(f"scene {name!r} is not available in this build") from None
    return getattr(module, class_name)


__all__ = ["SCENE_PATHS", "Scene", "SceneError", "scene_class"]
