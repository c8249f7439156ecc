"""Scene ``sockets``: each variant tells its story in the events, from real sockets.

Assertions are on event order (seq), not on timing. The scene runs at 10x so the file stays quick.
"""

from __future__ import annotations

import gc
import inspect
import threading
import time
import warnings
from collections.abc import Iterable

import pytest

from loopviz.runner import SceneRunner, SceneSpec
from loopviz.scenes import SceneError, scene_class
from loopviz.scenes.sockets import REQUEST, SELECT_TIMEOUT, SocketsScene
from loopviz.trace import Event, new_event_loop

SPEED = 10.0
ROUNDS = 2


def run_scene(variant: str, *, rounds: int = ROUNDS, **options: object) -> list[Event]:
    """Run the scene headless on its own traced loop thread until it ends; return its events."""
    runner = SceneRunner(
        [SceneSpec("sockets", variant, {"rounds": rounds, **options})], speed=SPEED
    )
    runner.start()
    try:
        assert runner.join(30), "the scene did not end by itself"
    finally:
        runner.stop()
    assert runner.failures == {}
    return runner.stream.read()


@pytest.fixture(scope="module")
def blocking() -> list[Event]:
    return run_scene("blocking")


@pytest.fixture(scope="module")
def nonblocking() -> list[Event]:
    return run_scene("nonblocking")


@pytest.fixture(scope="module")
def select_events() -> list[Event]:
    return run_scene("select")


def of(events: Iterable[Event], kind: str, **fields: object) -> list[Event]:
    return [e for e in events if e.kind == kind and all(e.get(k) == v for k, v in fields.items())]


def one(events: Iterable[Event], kind: str, **fields: object) -> Event:
    found = of(events, kind, **fields)
    assert len(found) == 1, f"expected one {kind} {fields}, got {len(found)}"
    return found[0]


def between(events: Iterable[Event], first: Event, last: Event) -> list[Event]:
    return [e for e in events if first.seq < e.seq < last.seq]


def client(events: list[Event], kind: str, number: int) -> Event:
    return one(events, kind, side="client", round=number)


def labels_of(entries: list[dict[str, object]]) -> list[object]:
    return [entry["label"] for entry in entries]


def ticks_while_waiting(events: list[Event], number: int) -> int:
    """Ticks between the client's send and its receive in round ``number``."""
    sent = client(events, "sockets.sent", number)
    received = client(events, "sockets.received", number)
    return len(of(between(events, sent, received), "sockets.tick"))


# -- every variant ------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["blocking", "nonblocking", "select_events"])
def test_every_round_connects_sends_receives_and_closes(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    events: list[Event] = request.getfixturevalue(fixture)
    listening = one(events, "sockets.listening")
    assert listening["host"] == "127.0.0.1" and listening["port"] > 0
    assert listening["label"] == "server listen"
    for number in range(1, ROUNDS + 1):
        label = f"client#{number}"
        steps = [
            client(events, kind, number)
            for kind in ("sockets.connected", "sockets.sent", "sockets.received", "sockets.closed")
        ]
        assert [e.seq for e in steps] == sorted(e.seq for e in steps)
        assert {e["label"] for e in steps} == {label}
        assert steps[0]["port"] == listening["port"]
        assert steps[1]["bytes"] == len(REQUEST) and steps[2]["bytes"] == len(REQUEST)
        # The fd was labelled before anything could report it.
        labelled = [e for e in of(events, "fd_label", label=label) if e.seq < steps[0].seq]
        assert labelled and labelled[-1]["fd"] == steps[0]["fd"]
        server = f"server conn#{number}"
        assert one(events, "sockets.answering", conn=number)["label"] == server
        assert one(events, "sockets.closed", side="server", conn=number)["label"] == server
    finished = one(events, "scene.finished")
    assert finished["scene"] == "sockets"
    assert all(e.seq < finished.seq for e in of(events, "sockets.closed"))


@pytest.mark.parametrize("fixture", ["blocking", "nonblocking", "select_events"])
def test_the_ticker_ticks_in_every_variant(fixture: str, request: pytest.FixtureRequest) -> None:
    events: list[Event] = request.getfixturevalue(fixture)
    ticks = of(events, "sockets.tick")
    assert [t["n"] for t in ticks] == list(range(1, len(ticks) + 1))
    printed = [e["text"] for e in of(events, "output", name="ticker")]
    assert printed == [f"tick {t['n']}\n" for t in ticks]


# -- blocking -----------------------------------------------------------------------------------


def recv_line() -> str:
    lines, first = inspect.getsourcelines(SocketsScene.blocking_round)
    offset = next(i for i, line in enumerate(lines) if "data = sock.recv(" in line)
    return f"sockets.py:{first + offset}"


def test_blocking_recv_stalls_the_loop_and_names_the_line(blocking: list[Event]) -> None:
    assert one(blocking, "sockets.listening")["runs_on"] == "thread"
    stalls = of(blocking, "loop_stalled", line=recv_line())
    assert len(stalls) == ROUNDS
    for number, stall in enumerate(stalls, 1):
        assert stall["name"] == "blocking client"
        assert stall["source"].startswith("data = sock.recv(RECV_SIZE)")
        # The stall is reported when the frozen step ends: after that round's receive.
        received = client(blocking, "sockets.received", number)
        assert received.seq < stall.seq
        assert ticks_while_waiting(blocking, number) == 0
        # Nothing at all happens on the loop thread while it sits in recv.
        sent = client(blocking, "sockets.sent", number)
        loop_kinds = {"before_io_wait", "after_io_wait", "before_task_step", "after_task_step"}
        assert [e for e in between(blocking, sent, received) if e.kind in loop_kinds] == []


def test_blocking_leaves_a_gap_in_the_ticks(blocking: list[Event]) -> None:
    for number in range(1, ROUNDS + 1):
        received = client(blocking, "sockets.received", number)
        after = next(e for e in of(blocking, "sockets.tick") if e.seq > received.seq)
        # The first tick after the freeze comes a whole server delay late.
        assert after["gap"] > 1.25 * 0.8


# -- nonblocking --------------------------------------------------------------------------------


def test_nonblocking_client_is_watched_for_w_then_r(nonblocking: list[Event]) -> None:
    assert one(nonblocking, "sockets.listening")["runs_on"] == "loop"
    for number in range(1, ROUNDS + 1):
        label = f"client#{number}"
        connected = client(nonblocking, "sockets.connected", number)
        closed = client(nonblocking, "sockets.closed", number)
        watches = [e for e in of(nonblocking, "fd_watch", label=label) if e.seq < closed.seq]
        assert [w["events"] for w in watches][-2:] == ["w", "r"]
        assert watches[-2].seq < connected.seq < watches[-1].seq
        waits = [
            (e.seq, entry["events"])
            for e in of(nonblocking, "before_io_wait")
            for entry in e["fds"]
            if entry["label"] == label and e.seq < closed.seq
        ]
        assert any(events == "w" and seq < connected.seq for seq, events in waits)
        sent = client(nonblocking, "sockets.sent", number)
        received = client(nonblocking, "sockets.received", number)
        assert any(events == "r" and sent.seq < seq < received.seq for seq, events in waits)
        ready = [
            entry["events"]
            for e in between(nonblocking, sent, received)
            if e.kind == "after_io_wait"
            for entry in e["ready_fds"]
            if entry["label"] == label
        ]
        assert ready == ["r"]


def test_nonblocking_ticks_on_while_it_waits(nonblocking: list[Event]) -> None:
    assert of(nonblocking, "loop_stalled") == []
    for number in range(1, ROUNDS + 1):
        assert ticks_while_waiting(nonblocking, number) >= 3  # 1.25 s / 0.25 s, less the edges


def test_blocking_client_stalls_the_ticker_and_the_nonblocking_one_does_not(
    blocking: list[Event], nonblocking: list[Event]
) -> None:
    """The lesson, from the events: the same request, with and without freezing the loop."""
    rounds = range(1, ROUNDS + 1)
    assert [ticks_while_waiting(blocking, n) for n in rounds] == [0] * ROUNDS
    assert all(ticks_while_waiting(nonblocking, n) > 0 for n in rounds)
    assert len(of(blocking, "loop_stalled", line=recv_line())) == ROUNDS
    assert of(nonblocking, "loop_stalled") == []


# -- select -------------------------------------------------------------------------------------


def test_select_calls_mirror_the_notes_loop(select_events: list[Event]) -> None:
    for number in range(1, ROUNDS + 1):
        label = [f"client#{number}"]
        calls = of(select_events, "select.call", round=number)
        returns = of(select_events, "select.returned", round=number)
        assert [c["call"] for c in calls] == [r["call"] for r in returns]
        assert all(c["timeout"] == SELECT_TIMEOUT for c in calls)
        for call, returned in zip(calls, returns, strict=True):
            assert call.seq < returned.seq
        # First call: watch the socket for everything; it is writable (connected), so send.
        first_call, first_return = calls[0], returns[0]
        assert labels_of(first_call["inputs"]) == label
        assert labels_of(first_call["outputs"]) == label
        assert labels_of(first_call["errors"]) == label
        assert labels_of(first_return["writable"]) == label
        sent = client(select_events, "sockets.sent", number)
        assert first_return.seq < sent.seq < calls[1].seq
        # Then only for reading, timing out until the server answers, then readable: read, close.
        for call in calls[1:]:
            assert labels_of(call["inputs"]) == label and call["outputs"] == []
        assert any(r["timed_out"] for r in returns[1:-1])
        assert all(r["readable"] == [] for r in returns[:-1])
        assert labels_of(returns[-1]["readable"]) == label
        received = client(select_events, "sockets.received", number)
        assert returns[-1].seq < received.seq


def test_select_runs_in_a_thread_while_the_loop_ticks(select_events: list[Event]) -> None:
    assert of(select_events, "loop_stalled") == []
    for number in range(1, ROUNDS + 1):
        assert ticks_while_waiting(select_events, number) >= 3
        # Meanwhile the loop serves the other end: the server task sleeps its delay on a timer,
        # and the loop's own selector never watches the client's fd.
        connected = client(select_events, "sockets.connected", number)
        received = client(select_events, "sockets.received", number)
        server_steps = [
            e["awaits"]
            for e in between(select_events, connected, received)
            if e.kind == "after_task_step" and e["name"] == f"server conn#{number}"
        ]
        assert "sleep(1.25)" in server_steps
        watched = {
            entry["label"] for e in of(select_events, "before_io_wait") for entry in e["fds"]
        }
        assert "server listen" in watched
        assert not any(label.startswith("client#") for label in watched)


# -- together, stopped, configured --------------------------------------------------------------


def test_two_scenes_at_once_on_two_loops_get_their_own_ports() -> None:
    runners = [
        SceneRunner([SceneSpec("sockets", variant, {"rounds": 1})], speed=SPEED)
        for variant in ("blocking", "nonblocking")
    ]
    for runner in runners:
        runner.start()
    try:
        assert all(runner.join(30) for runner in runners)
    finally:
        for runner in runners:
            runner.stop()
    streams = [runner.stream.read() for runner in runners]
    ports = [one(events, "sockets.listening")["port"] for events in streams]
    assert len(set(ports)) == 2 and 0 not in ports
    for events in streams:
        assert client(events, "sockets.received", 1)["bytes"] == len(REQUEST)


def test_sockets_runs_beside_the_tasks_scene_on_one_loop() -> None:
    runner = SceneRunner(
        [SceneSpec("tasks", "async"), SceneSpec("sockets", "nonblocking", {"rounds": 1})],
        speed=SPEED,
    )
    runner.start()
    try:
        assert runner.join(30)
    finally:
        runner.stop()
    events = runner.stream.read()
    assert runner.failures == {}
    assert {e["variant"] for e in of(events, "scene.finished")} == {"async", "nonblocking"}


def our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sockets ")]


@pytest.mark.parametrize("variant", ["blocking", "nonblocking", "select"])
def test_stopping_mid_request_closes_every_socket_and_thread(variant: str) -> None:
    gc.collect()  # what earlier tests left for the collector is theirs, not this run's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        runner = SceneRunner([SceneSpec("sockets", variant)], speed=SPEED)
        runner.start()
        events: list[Event] = []
        deadline = time.monotonic() + 10
        while not of(events, "sockets.sent") and time.monotonic() < deadline:
            time.sleep(0.005)
            events += runner.stream.read()
        assert of(events, "sockets.sent"), "the client never sent its request"
        assert runner.stop(), "the scene did not stop"
        events += runner.stream.read()
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert our_threads() == []
    assert runner.failures == {}
    opened = {(e["side"], e["label"]) for e in of(events, "sockets.connected")}
    opened |= {("server", e["label"]) for e in of(events, "sockets.accepted")}
    closed = {(e["side"], e["label"]) for e in of(events, "sockets.closed")}
    assert opened <= closed
    assert of(events, "scene.finished") == []


def test_the_default_variant_is_nonblocking_and_options_are_checked() -> None:
    loop = new_event_loop()
    try:
        assert scene_class("sockets") is SocketsScene
        scene = SocketsScene(loop)
        assert scene.variant == "nonblocking"
        assert (scene.delay, scene.rounds) == (1.25, 3)
        assert SocketsScene.default_duration is None  # it ends by itself
        configured = SocketsScene(loop, "select", delay="0.75", rounds="2")
        assert (configured.delay, configured.rounds) == (0.75, 2)
        for bad in ({"delay": 0}, {"delay": "soon"}, {"rounds": 0}, {"port": 8080}):
            with pytest.raises(SceneError):
                SocketsScene(loop, **bad)
        with pytest.raises(SceneError):
            SocketsScene(loop, "threads")
    finally:
        loop.close()


def test_a_shorter_delay_means_fewer_select_timeouts() -> None:
    events = run_scene("select", rounds=1, delay=0.2)
    returns = of(events, "select.returned", round=1)
    # Written, then answered within the first 0.5 s wait: no timeout at all.
    assert [labels_of(r["writable"]) for r in returns] == [["client#1"], []]
    assert [r["timed_out"] for r in returns] == [False, False]
