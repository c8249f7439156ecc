"""SelectorState, folded from a real socket conversation and from hand-made edge cases."""

from __future__ import annotations

import asyncio
import socket
from functools import cache

from loopviz.models.selector import SelectorState
from loopviz.trace import Event
from tracing import run_traced

PAYLOAD = 4_000_000  # more than a socket buffer holds: the writer must wait until it is writable


async def socket_story() -> bytes:
    """A reader waits for data (``r``), then a writer fills the buffer and waits (``w``)."""
    loop = asyncio.get_running_loop()
    client, server = socket.socketpair()
    with client, server:
        client.setblocking(False)
        server.setblocking(False)
        loop.label_fd(client, "client#1")  # type: ignore[attr-defined]
        loop.label_fd(server, "server conn#1")  # type: ignore[attr-defined]
        reader = asyncio.create_task(loop.sock_recv(client, 16), name="reader")
        await asyncio.sleep(0.5)
        await loop.sock_sendall(server, b"hi")
        first = await reader
        writer = asyncio.create_task(loop.sock_sendall(server, b"x" * PAYLOAD), name="writer")
        await asyncio.sleep(0.5)
        received = 0
        while received < PAYLOAD:
            received += len(await loop.sock_recv(client, 1 << 20))
        await writer
        return first


@cache
def recorded() -> tuple[Event, ...]:
    result, events = run_traced(socket_story, virtual_time=True)
    assert result == b"hi"
    return tuple(events)


def fd_of(label: str) -> int:
    return next(e["fd"] for e in recorded() if e.kind == "fd_label" and e["label"] == label)


def ev(seq: int, t: float, kind: str, **fields: object) -> Event:
    return Event(seq, t, kind, fields)


# -- a real conversation -----------------------------------------------------------------------


def test_a_waiting_reader_is_watched_for_r_then_reported_readable() -> None:
    events = recorded()
    client = fd_of("client#1")
    state = SelectorState()
    ready_at = next(
        i
        for i, e in enumerate(events)
        if e.kind == "after_io_wait" and any(f["fd"] == client for f in e["ready_fds"])
    )
    state.apply_all(events[:ready_at])
    call = state.last_select
    assert call is not None and call.in_progress
    assert (client, "r") in call.watched
    assert [(info.label, info.interest) for info in state.watched] == [("client#1", "r")]

    state.apply(events[ready_at])
    assert not call.in_progress and call.ready_fds == ((client, "r"),)
    info = state.fds[client]
    assert (info.ready_count, info.last_ready_events) == (1, "r")
    assert info.last_ready == call.returned
    assert list(info.history) == [(call.returned, "r")]


def test_a_full_buffer_makes_the_writer_wait_for_w() -> None:
    state = SelectorState()
    server = fd_of("server conn#1")
    seen_w = False
    for event in recorded():
        state.apply(event)
        if event.kind == "before_io_wait" and (server, "w") in state.last_select.watched:
            seen_w = True
            assert state.fds[server].interest == "w"
    assert seen_w
    assert state.fds[server].ready_count >= 1 and "w" in (state.fds[server].last_ready_events or "")


def test_counts_and_history_outlive_the_registration() -> None:
    events = recorded()
    state = SelectorState(history=4)
    state.apply_all(events)
    assert state.watched == []  # every fd was unregistered (and the sockets closed)
    client = state.fds[fd_of("client#1")]
    assert client.interest is None and client.ready_count >= 2
    assert len(client.history) <= 4 and len(state.ready_history) == 4
    assert state.selects == sum(e.kind == "before_io_wait" for e in events)
    assert state.ready_events == sum(
        len(e["ready_fds"]) for e in events if e.kind == "after_io_wait"
    )
    assert sum(info.ready_count for info in state.fds.values()) == state.ready_events


# -- edge cases --------------------------------------------------------------------------------


def test_watch_unwatch_and_labels() -> None:
    state = SelectorState()
    state.apply(ev(0, 0.0, "fd_label", fd=5, label="server listen"))
    assert state.fds[5].interest is None and state.label(5) == "server listen"
    state.apply(ev(1, 0.1, "fd_watch", fd=5, events="r", label="server listen"))
    state.apply(ev(2, 0.2, "fd_watch", fd=6, events="rw", label="fd 6"))
    assert [(i.fd, i.interest) for i in state.watched] == [(5, "r"), (6, "rw")]
    state.apply(ev(3, 0.3, "fd_unwatch", fd=5, label="server listen"))
    assert [i.fd for i in state.watched] == [6]
    assert state.label(99) == "fd 99" and state.ready_count(99) == 0


def test_before_io_wait_repairs_a_map_that_missed_changes() -> None:
    state = SelectorState()
    state.apply(ev(0, 0.0, "fd_watch", fd=5, events="r", label="a"))
    fds = [{"fd": 7, "events": "w", "label": "b"}]
    state.apply(ev(9, 1.0, "before_io_wait", iteration=4, timeout=None, fds=fds, ready=0, timers=0))
    assert [(i.fd, i.interest, i.label) for i in state.watched] == [(7, "w", "b")]
    assert state.last_select is not None and state.last_select.timeout is None


def test_an_after_io_wait_without_its_call_still_counts() -> None:
    state = SelectorState()
    ready = [{"fd": 3, "events": "r", "label": "client#2"}]
    state.apply(
        ev(
            5,
            2.0,
            "after_io_wait",
            iteration=9,
            ready_fds=ready,
            waited=0.1,
            waited_wall=0.1,
            timers_due=0,
        )
    )
    assert state.selects == 1 and state.ready_events == 1
    assert state.last_select is not None and state.last_select.ready_fds == ((3, "r"),)
    assert state.fds[3].label == "client#2"


def test_unknown_kinds_are_ignored() -> None:
    state = SelectorState()
    state.apply(ev(0, 0.0, "queue.published", scene="queue"))
    state.apply(ev(1, 0.0, "brand_new_kind", fd=3))
    assert state == SelectorState()


def test_a_reused_fd_number_starts_a_fresh_history() -> None:
    from loopviz.models.selector import SelectorState
    from loopviz.trace import Event

    state = SelectorState()
    state.apply(Event(0, 0.0, "fd_label", {"fd": 8, "label": "client#1"}))
    state.apply(Event(1, 0.1, "fd_watch", {"fd": 8, "events": "r", "label": "client#1"}))
    state.apply(
        Event(
            2,
            0.2,
            "after_io_wait",
            {
                "iteration": 1,
                "ready_fds": [{"fd": 8, "events": "r", "label": "client#1"}],
                "waited": 0.1,
                "waited_wall": 0.1,
                "timers_due": 0,
            },
        )
    )
    assert state.ready_count(8) == 1
    state.apply(Event(3, 0.3, "fd_unwatch", {"fd": 8, "label": "client#1"}))
    state.apply(Event(4, 0.4, "fd_label", {"fd": 8, "label": "client#2"}))
    assert state.label(8) == "client#2"
    assert state.ready_count(8) == 0
    assert state.fds[8].last_ready is None
    # client#1's readiness stays history, for the readiness lanes.
    assert [(info.label, info.ready_count) for info in state.retired] == [("client#1", 1)]
