"""The high-contrast theme for projectors: pure black and white with saturated signal colours."""

from textual.theme import BUILTIN_THEMES, Theme

PROJECTOR = Theme(
    name="loopviz-projector",
    primary="#5FD7FF",
    secondary="#FFD700",
    accent="#FF87FF",
    warning="#FFD700",
    error="#FF5F5F",
    success="#5FFF5F",
    foreground="#FFFFFF",
    background="#000000",
    surface="#000000",
    panel="#1C1C1C",
    dark=True,
)

#: The dashboard opens in the projector theme: every text style in it has at least 7:1 contrast
#: (WCAG AAA) on its background, which Textual's own themes do not (textual-dark's blue "waiting"
#: is about 4.6:1). Others stay available with --theme.
DEFAULT_THEME = PROJECTOR.name

#: Every theme ``--theme`` takes: Textual's own and the projector theme.
THEMES: tuple[str, ...] = tuple(sorted({*BUILTIN_THEMES, PROJECTOR.name}))
