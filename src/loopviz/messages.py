"""What a command tells its user: one line on stderr each, never a traceback.

Every bad input ends in one line and exit status 2 (``USAGE_ERROR``).
"""

from __future__ import annotations

import contextlib
import re
import sys

USAGE_ERROR = 2
#: An error message shows at most this much of any one word the user typed (a 100 KB argument
#: would bury the message).
LONGEST_WORD = 120
LONGEST_MESSAGE = 400


class UsageError(Exception):
    """A mistake in what the user typed; its message is the whole error line."""


def one_line(message: str) -> str:
    """``message`` fit for one line of stderr: control characters escaped, any word longer than
    ``LONGEST_WORD`` cut, saying how long it was."""
    message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)

    def cut(word: re.Match[str]) -> str:
        text = word.group()
        return f"{text[: LONGEST_WORD - 20]}… ({len(text)} characters)"

    message = re.sub(rf"[^\s:,'\"]{{{LONGEST_WORD + 1},}}", cut, message)
    if len(message) > LONGEST_MESSAGE:  # many words: a long argument with spaces in it
        message = f"{message[: LONGEST_MESSAGE - 30]}… ({len(message)} characters)"
    return message


def say(message: str) -> None:
    """One line on stderr; nothing if stderr is closed or gone (a hung-up terminal): what the
    command did must not depend on whether anyone can read about it."""
    stream = sys.stderr
    if stream is None:  # print(file=None) would write to stdout, maybe into the recording
        return
    with contextlib.suppress(OSError, ValueError):
        print(f"loopviz: {one_line(message)}", file=stream, flush=True)


def warn(message: str) -> None:
    say(f"warning: {message}")


def error(message: str) -> None:
    say(f"error: {message}")
