"""Shared fixtures: a clean rendering environment for every test."""

from __future__ import annotations

import os

# Rendering must not depend on the developer's terminal settings.
for _name in ("NO_COLOR", "TEXTUAL_THEME", "FORCE_COLOR", "TEXTUAL", "COLUMNS", "LINES"):
    os.environ.pop(_name, None)
