"""Narration: the sentences a learner reads, from real runs and hand-made edge cases."""

from __future__ import annotations

import asyncio
import inspect
import re
import socket
from functools import cache

import pytest

from loopviz.models.loop_state import LoopState
from loopviz.models.narration import Narration, call_of, seconds
from loopviz.scenes import notes_blocking
from loopviz.scenes.tasks import TasksScene
from loopviz.trace import Event
from tracing import run_traced


async def _scene(variant: str) -> None:
    await TasksScene(asyncio.get_running_loop(), variant).run()


@cache
def recorded(variant: str, speed: float = 1.0) -> tuple[Event, ...]:
    _, events = run_traced(lambda: _scene(variant), virtual_time=True, speed=speed)
    return tuple(events)


def all_sentences(events: tuple[Event, ...], **options: object) -> list[str]:
    narration = Narration(history_size=100_000, **options)  # type: ignore[arg-type]
    narration.apply_all(events)
    return narration.sentences


def line_of(function: object, text: str) -> str:
    lines, first = inspect.getsourcelines(function)  # type: ignore[arg-type]
    name = inspect.getsourcefile(function).rsplit("/", 1)[-1]  # type: ignore[arg-type]
    return f"{name}:{first + next(i for i, line in enumerate(lines) if text in line)}"


def ev(seq: int, t: float, kind: str, **fields: object) -> Event:
    return Event(seq, t, kind, fields)


# -- real runs ---------------------------------------------------------------------------------


def test_the_async_scene_told_in_plain_sentences() -> None:
    sentences = all_sentences(recorded("async"))
    assert (
        "print_numbers awaited sleep(0.25) and gave control back; "
        "the loop runs print_alphabet next." in sentences
    )
    assert (
        "print_alphabet awaited sleep(0.25) and gave control back; nothing else is runnable."
        in sentences
    )
    assert (
        "the loop waits in select for 0.25 s: nothing is runnable, the next timer is due then."
        in sentences
    )
    assert any(s.startswith("select returned after 0.25 s: ") for s in sentences)
    assert sentences[-3:-1] == ["print_numbers finished.", "print_alphabet finished."]


def test_the_next_task_is_named_only_once_it_runs() -> None:
    narration = Narration()
    events = recorded("async")
    end = next(e for e in events if e.kind == "after_task_step" and e["name"] == "print_numbers")
    narration.apply_all(events[: events.index(end) + 1])
    assert narration.sentence == "print_numbers awaited sleep(0.25) and gave control back."
    assert narration.pending == "print_numbers"
    following = events[events.index(end) + 1 :]
    begins = next(i for i, e in enumerate(following) if e.kind == "before_task_step")
    narration.apply_all(following[:begins])  # e.g. output: the sentence still waits
    assert narration.pending == "print_numbers"
    narration.apply(following[begins])  # print_alphabet's step begins
    assert narration.sentence.endswith("; the loop runs print_alphabet next.")
    assert narration.pending is None


def test_history_is_short_and_newest_last() -> None:
    narration = Narration()
    narration.apply_all(recorded("async"))
    assert len(narration.history) == 5
    assert narration.sentence == narration.sentences[-1]
    times = [entry.t for entry in narration.history]
    assert times == sorted(times)


def test_a_blocking_call_is_named_with_its_line_and_loop_time() -> None:
    narration = Narration(history_size=1000, loop=LoopState(speed=20))
    narration.apply_all(recorded("blocking", speed=20))
    where = line_of(notes_blocking.print_numbers, "time.sleep(")
    pattern = re.compile(
        rf"print_numbers blocked the loop for 0\.2\d s at {where} \(time\.sleep\(\.\.\.\)\): "
        r"nothing else could run; the loop runs print_alphabet next\."
    )
    assert any(pattern.fullmatch(s) for s in narration.sentences), [
        s for s in narration.sentences if "blocked" in s
    ][:3]


def test_waiting_on_a_socket_names_its_label() -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        client, server = socket.socketpair()
        with client, server:
            client.setblocking(False)
            server.setblocking(False)
            loop.label_fd(client, "client#1")  # type: ignore[attr-defined]
            reader = asyncio.create_task(loop.sock_recv(client, 16), name="reader")
            await asyncio.sleep(0)
            loop.call_later(0.5, server.send, b"hi")
            return await reader

    _, events = run_traced(main, virtual_time=True)
    sentences = all_sentences(tuple(events))
    assert (
        "the loop waits in select for 0.5 s: nothing is runnable; "
        "I/O on client#1 or the next timer, due then, wakes it." in sentences
    )
    assert (
        "the loop waits in select with no timeout: nothing is runnable; "
        "only I/O on client#1 can wake it." in sentences
    )
    assert "select returned after less than a millisecond: client#1 is readable." in sentences


# -- edge cases --------------------------------------------------------------------------------


def test_machinery_is_left_out_unless_asked_for() -> None:
    events = [
        ev(0, 0.0, "task_spawned", task=1, name="Task-1", user=False, parent=None),
        ev(1, 0.0, "before_task_step", task=1, name="Task-1"),
        ev(
            2,
            0.0,
            "after_task_step",
            task=1,
            name="Task-1",
            done=False,
            awaits="future",
            await_kind="future",
        ),
        ev(3, 0.1, "task_exited", task=1, name="Task-1", outcome="returned", detail=""),
    ]
    assert all_sentences(tuple(events)) == []
    assert all_sentences(tuple(events), machinery=True) == [
        "Task-1 was created; it waits in the run queue for its first turn.",
        "Task-1 awaited future and gave control back.",
        "Task-1 finished.",
    ]


def test_outcomes_yields_drops_and_scene_failures() -> None:
    events = (
        ev(0, 0.0, "before_task_step", task=4, name="w"),
        ev(
            1,
            0.0,
            "after_task_step",
            task=4,
            name="w",
            done=False,
            awaits="yield",
            await_kind="yield",
        ),
        ev(2, 0.0, "before_task_step", task=4, name="w"),
        ev(3, 0.1, "task_exited", task=4, name="w", outcome="failed", detail="ValueError: no"),
        ev(4, 0.1, "task_exited", task=5, name="c", outcome="cancelled", detail=""),
        ev(5, 0.2, "events_dropped", count=3, total=3),
        ev(6, 0.3, "scene.failed", scene="sockets", error="OSError: boom"),
        ev(7, 0.3, "queue.published", scene="queue"),
    )
    assert all_sentences(events) == [
        "w yielded and gave control back, staying runnable; the loop runs it again next.",
        "w failed: ValueError: no.",
        "c was cancelled.",
        "3 events lost: the viewer fell behind the loop.",
        "the sockets scene failed: OSError: boom.",
    ]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (0.25, "0.25 s"),
        (13.0, "13 s"),
        (0.249121, "0.25 s"),
        (0.0126, "13 ms"),
        (1.5, "1.5 s"),
        (0.00004, "less than a millisecond"),
    ],
)
def test_seconds(value: float, said: str) -> None:
    assert seconds(value) == said


def test_call_of() -> None:
    assert call_of("time.sleep(PAUSE / self.speed)  # blocks") == "time.sleep(...)"
    assert call_of("data = sock.recv(1024)") == "sock.recv(...)"
    assert call_of("while True:") == "while True:"
    assert call_of(None) is None


def test_loopviz_machinery_is_named_in_the_class_words() -> None:
    """A scene's main task created by loopviz's runner is just 'created' (not 'tasks repeater
    created tasks main'), and the dashboard's 3 s wait before a scene starts again is said as
    such (not 'the loop waits in select for 3 s: nothing is runnable')."""
    events = (
        ev(0, 0.0, "task_spawned", task=1, name="tasks repeater", user=False, parent=None),
        ev(1, 0.0, "before_task_step", task=1, name="tasks repeater"),
        ev(
            2,
            0.0,
            "task_spawned",
            task=2,
            name="tasks main",
            user=True,
            parent=1,
            parent_name="tasks repeater",
            site=None,
        ),
        ev(
            3,
            0.0,
            "after_task_step",
            task=1,
            name="tasks repeater",
            done=False,
            awaits="wait",
            await_kind="future",
        ),
        ev(4, 6.5, "task_exited", task=2, name="tasks main", outcome="returned", detail=""),
        ev(
            5,
            6.5,
            "before_io_wait",
            iteration=9,
            timeout=3.0,
            ready=0,
            timers=1,
            fds=[],
            live_tasks=None,
        ),
    )
    assert all_sentences(events) == [
        "tasks main was created; it waits in the run queue for its first turn.",
        "tasks main finished.",
        "the scene's tasks have all finished; it starts again in 3 s.",
    ]


def test_the_queue_story_is_told_with_its_requests() -> None:
    """The consumer goes down at 2 s and comes back at 5 s: the narration says who took which
    request and acked it, who went down holding what, that new requests (purpose, phone, code)
    wait in the queue, and that it is back."""
    from loopviz.runner import SceneRunner, SceneSpec, ScheduledAction

    runner = SceneRunner(
        [SceneSpec("queue")],
        duration=7.0,
        virtual_time=True,
        schedule=[
            ScheduledAction(2.0, "queue", "consumer-down"),
            ScheduledAction(5.0, "queue", "consumer-up"),
        ],
    )
    runner.start()
    assert runner.join(30), "the queue scene did not end"
    narration = Narration(history_size=1000)
    narration.apply_all(runner.stream.read())
    runner.stop()
    said = narration.sentences
    assert any(re.fullmatch(r"SMS sender #1 went down(, holding (#\d+(, )?)+)?\.", s) for s in said)
    waiting = [s for s in said if s.endswith("waits in the queue: no SMS sender is up.")]
    assert waiting and all(
        re.match(r"request #\d+ \((password reset|identity check) for \S+, code \d+\)", s)
        for s in waiting
    ), waiting
    assert "SMS sender #1 is back: it takes what waits." in said
    took = [s for s in said if re.match(r"SMS sender #1 took request #\d+ \(", s)]
    assert took and all(s.endswith(": unacked until the sender acks it.") for s in took)
    assert any(
        re.fullmatch(
            r"SMS sender #1 acked request #\d+: the SMS was sent, the broker deletes it\.", s
        )
        for s in said
    )


def test_a_dying_sender_s_request_is_said_to_be_redelivered_or_lost() -> None:
    events = (
        ev(
            0,
            0.0,
            "queue.published",
            scene="queue",
            msg=3,
            purpose="identity check",
            phone="010-3",
            code="333",
        ),
        ev(1, 0.1, "consumer.down", scene="queue", consumer=1, held=[3], calls=[]),
        ev(
            2,
            0.1,
            "queue.redelivered",
            scene="queue",
            msg=3,
            consumer=1,
            delivery=1,
            reason="consumer down",
        ),
        ev(
            3,
            0.2,
            "queue.lost",
            scene="queue",
            msg=3,
            consumer=2,
            delivery=2,
            reason="consumer down",
        ),
    )
    assert all_sentences(events) == [
        "request #3 (identity check for 010-3, code 333) waits in the queue: no SMS sender is up.",
        "SMS sender #1 went down, holding #3.",
        "request #3 (identity check for 010-3, code 333) was never acked: the broker puts it "
        "back in the queue (redelivered), so another sender sends it.",
        "request #3 (identity check for 010-3, code 333) is lost: auto ack removed it on "
        "delivery, and its sender died before sending.",
    ]
