"""How fast a traced loop's clock may run: shared by the tracer, the commands and the views."""

from __future__ import annotations

MIN_SPEED = 0.05
MAX_SPEED = 20.0


def check_speed(speed: float) -> float:
    """Return ``speed`` as a float, or raise ValueError if it is outside 0.05x..20x."""
    try:
        value = float(speed)
    except (TypeError, ValueError):
        raise ValueError(f"speed must be a number, not {speed!r}") from None
    if not MIN_SPEED <= value <= MAX_SPEED:
        raise ValueError(f"speed must be between {MIN_SPEED}x and {MAX_SPEED:g}x, not {value:g}x")
    return value
