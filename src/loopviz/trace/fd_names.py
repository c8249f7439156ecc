"""Names for a program's file descriptors, from what they are: ``tcp listen 127.0.0.1:8080``,
``tcp 127.0.0.1:52110 → 127.0.0.1:8080``, ``unix /run/app.sock``, ``pipe``.

Looked up once, when the loop starts watching an fd nobody named (a scene names its own), on
the consumer's side: a duplicate of the descriptor is asked, never the program's own object.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from typing import Any


def fd_name(fd: int) -> str | None:
    """What ``fd`` is, in a few words; None if it cannot be told (closed meanwhile)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode):
        return "pipe"
    if stat.S_ISCHR(mode):
        return "terminal" if os.isatty(fd) else "device"
    if stat.S_ISREG(mode):
        return "file"
    if not stat.S_ISSOCK(mode):
        return None
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return "socket"
    with sock:
        return _socket_name(sock)


def _socket_name(sock: socket.socket) -> str:
    family, kind = sock.family, sock.type
    here = _address(sock.getsockname(), family)
    there = None
    with contextlib.suppress(OSError):
        there = _address(sock.getpeername(), family)
    if family == socket.AF_UNIX:
        return f"unix {there or here or '(unnamed)'}"
    proto = (
        "tcp" if kind == socket.SOCK_STREAM else "udp" if kind == socket.SOCK_DGRAM else "socket"
    )
    listening = False
    with contextlib.suppress(OSError):
        listening = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    if listening:
        return f"{proto} listen {here}"
    if there:
        return f"{proto} {here} → {there}"
    return f"{proto} {here}"


def _address(address: Any, family: int) -> str:
    if family == socket.AF_UNIX:
        if isinstance(address, bytes):  # the abstract namespace
            return "@" + address.lstrip(b"\0").decode(errors="replace")
        return str(address)
    if family == socket.AF_INET6:
        return f"[{address[0]}]:{address[1]}"
    return f"{address[0]}:{address[1]}"
