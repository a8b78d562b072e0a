"""Watching with consent, through the real ASGI app into a real container: an instructor of
the student's class watches read-only, the student is told at once, and the instructor's keys
reach the shell only while the student allows it."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from apps.teaching.models import Enrollment, WatchEvent
from apps.terminals import protocol
from tests.docker.conftest import Screen, close_code, connect_terminal, login_cookie, start_lab

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


async def open_socket(path: str, user) -> WebsocketCommunicator:
    from labsite.asgi import application

    cookie = await login_cookie(user)
    headers = [
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator


async def watch(session, user, tab: int = 1) -> Screen:
    return Screen(await open_socket(f"/ws/sessions/{session.pk}/watch/{tab}/", user))


class Events:
    """The student's events socket, keeping the last list of watchers it was told."""

    def __init__(self, communicator) -> None:
        self.communicator = communicator
        self.watchers: list[dict] | None = None

    async def until(self, predicate, timeout: float = 10) -> list[dict]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.watchers is None or not predicate(self.watchers):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"watchers never matched; last: {self.watchers}")
            message = await self.communicator.receive_output(timeout=remaining)
            assert message["type"] != "websocket.close", message
            data = json.loads(message.get("text") or "{}")
            if data.get("type") == protocol.WATCHERS:
                self.watchers = data["watchers"]
        return self.watchers

    async def answer(self, kind: str, watch_id: int) -> None:
        await self.communicator.send_to(text_data=json.dumps({"type": kind, "watch": watch_id}))


async def student_events(session, user) -> Events:
    return Events(await open_socket(f"/ws/sessions/{session.pk}/events/", user))


async def until_state(screen: Screen, typing: bool, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        states = [c for c in screen.controls if c.get("type") == protocol.WATCH_STATE]
        if states and states[-1]["typing"] is typing:
            return
        await screen.pump(max(0.01, deadline - loop.time()))


def sandbox_file(docker_client, session, path: str) -> str | None:
    result = docker_client.containers.get(session.sandbox_name).exec_run(["cat", path])
    return result.output.decode() if result.exit_code == 0 else None


async def test_the_instructor_sees_the_students_terminal_and_the_student_sees_the_watcher(
    alice, carol, hello_lab
):
    session = await start_lab(alice, hello_lab)
    student = Screen(await connect_terminal(session, alice))
    await student.until(b"# ")
    await student.type("echo before-$((20+1))\r")
    await student.until(b"before-21")
    events = await student_events(session, alice)
    await events.until(lambda w: w == [])

    watcher = await watch(session, carol)
    await watcher.until(b"before-21")  # a late watcher is shown the recent screen first
    screen = [c for c in watcher.controls if c.get("type") == protocol.WATCH_SCREEN]
    assert screen and (screen[0]["cols"], screen[0]["rows"]) == (80, 24)
    seen = await events.until(lambda w: len(w) == 1)
    assert seen[0]["name"] == "carol" and not seen[0]["typing"]

    await student.type("echo live-$((40+2))\r")
    await watcher.until(b"live-42")  # and then what the student sees, live

    await watcher.communicator.disconnect()
    await events.until(lambda w: w == [])  # the student is told the watcher left
    await student.communicator.disconnect()
    await events.communicator.disconnect()


async def test_keys_reach_the_shell_only_while_the_student_allows_it(
    alice, carol, hello_lab, docker_client
):
    session = await start_lab(alice, hello_lab)
    student = Screen(await connect_terminal(session, alice))
    await student.until(b"# ")
    events = await student_events(session, alice)
    watcher = await watch(session, carol)
    await events.until(lambda w: len(w) == 1)

    await watcher.type("echo uninvited > /tmp/uninvited\r")
    await asyncio.sleep(1.0)
    assert sandbox_file(docker_client, session, "/tmp/uninvited") is None

    await watcher.communicator.send_to(text_data=json.dumps({"type": protocol.ASK_TO_TYPE}))
    asking = await events.until(lambda w: w and w[0]["asking"])
    await events.answer(protocol.WATCH_ALLOW, asking[0]["id"])
    await until_state(watcher, typing=True)
    await watcher.type("echo invited > /tmp/invited\r")
    await student.until(b"invited")  # the student sees the instructor's typing
    for _ in range(50):
        if sandbox_file(docker_client, session, "/tmp/invited") == "invited\n":
            break
        await asyncio.sleep(0.1)
    assert sandbox_file(docker_client, session, "/tmp/invited") == "invited\n"

    await events.answer(protocol.WATCH_TAKE_BACK, asking[0]["id"])
    await until_state(watcher, typing=False)
    await watcher.type("echo again > /tmp/again\r")
    await asyncio.sleep(1.0)
    assert sandbox_file(docker_client, session, "/tmp/again") is None

    await watcher.communicator.disconnect()
    await asyncio.sleep(0.2)
    kinds = await database_sync_to_async(
        lambda: list(
            WatchEvent.objects.filter(watch__session=session).values_list("kind", flat=True)
        )
    )()
    assert kinds == ["started", "asked", "allowed", "revoked", "ended"]
    await student.communicator.disconnect()
    await events.communicator.disconnect()


async def test_a_refused_request_keeps_the_watcher_read_only(alice, carol, hello_lab):
    session = await start_lab(alice, hello_lab)
    events = await student_events(session, alice)
    watcher = await watch(session, carol)
    await watcher.communicator.send_to(text_data=json.dumps({"type": protocol.ASK_TO_TYPE}))
    asking = await events.until(lambda w: w and w[0]["asking"])
    await events.answer(protocol.WATCH_REFUSE, asking[0]["id"])
    settled = await events.until(lambda w: w and not w[0]["asking"])
    assert settled[0]["typing"] is False
    await watcher.communicator.disconnect()
    await events.communicator.disconnect()


async def test_nobody_else_may_watch_or_open_the_terminal(alice, bob, carol, dave, hello_lab):
    session = await start_lab(alice, hello_lab)
    for outsider in (dave, bob, alice):  # another class's instructor, another student, herself
        refused = await open_socket(f"/ws/sessions/{session.pk}/watch/1/", outsider)
        assert await close_code(refused) == protocol.FORBIDDEN
    # The instructor of her class watches; they never get the terminal itself.
    typing = await connect_terminal(session, carol)
    assert await close_code(typing) == protocol.FORBIDDEN


async def test_the_watcher_is_cut_off_when_the_student_leaves_the_class(alice, carol, hello_lab):
    session = await start_lab(alice, hello_lab)
    watcher = await watch(session, carol)
    await database_sync_to_async(Enrollment.objects.filter(student=alice).delete)()
    assert await close_code(watcher.communicator) == protocol.FORBIDDEN
