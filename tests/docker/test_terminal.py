"""The browser terminal, through the real ASGI app, into a real container."""

from __future__ import annotations

import asyncio
import json

import pytest

from apps.terminals import protocol
from tests.docker.conftest import Screen, close_code, connect_terminal, start_lab

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


async def test_type_echo_and_read_it_back(alice, hello_lab):
    session = await start_lab(alice, hello_lab)
    screen = Screen(await connect_terminal(session, alice))
    await screen.until(b"# ")
    attached = {"type": protocol.STATUS, "state": protocol.STATUS_ATTACHED, "tab": 1}
    assert attached in screen.controls
    await screen.type("echo hello-$((6*7))\r")
    await screen.until(b"hello-42")
    await screen.communicator.disconnect()


async def test_resize_reaches_the_shell(alice, hello_lab):
    session = await start_lab(alice, hello_lab)
    screen = Screen(await connect_terminal(session, alice, cols=80, rows=24))
    await screen.until(b"# ")
    await screen.communicator.send_to(
        text_data=json.dumps({"type": protocol.RESIZE, "cols": 132, "rows": 41})
    )
    await screen.type("stty size | tr ' ' x\r")
    await screen.until(b"41x132")
    await screen.communicator.disconnect()


async def test_reconnect_reaches_the_same_shell_with_replay(alice, hello_lab):
    session = await start_lab(alice, hello_lab)
    first = Screen(await connect_terminal(session, alice))
    await first.until(b"# ")
    await first.type("cd /tmp && export MARK=first-visit && echo marker-$MARK\r")
    await first.until(b"marker-first-visit")
    await first.communicator.disconnect()

    second = Screen(await connect_terminal(session, alice))
    await second.until(b"marker-first-visit")  # replayed before anything is typed
    await second.type("echo now-in-$(pwd)-$MARK\r")
    await second.until(b"now-in-/tmp-first-visit")
    await second.communicator.disconnect()


async def test_two_tabs_are_two_shells(alice, hello_lab):
    session = await start_lab(alice, hello_lab)
    one = Screen(await connect_terminal(session, alice, tab=1))
    two = Screen(await connect_terminal(session, alice, tab=2))
    await one.until(b"# ")
    await two.until(b"# ")
    await one.type("cd /etc\r")
    await two.type("echo tab2-in-$(pwd)\r")
    await two.until(b"tab2-in-/root")
    await one.communicator.disconnect()
    await two.communicator.disconnect()


async def test_disconnect_leaves_no_exec_behind(alice, hello_lab, docker_client):
    session = await start_lab(alice, hello_lab)
    for _ in range(3):
        screen = Screen(await connect_terminal(session, alice))
        await screen.until(b"# ")
        await screen.communicator.disconnect()
    container = docker_client.containers.get(session.sandbox_name)
    # The exec ends once the engine has closed its stream: soon, not at the same instant.
    for _ in range(50):
        clients = container.exec_run(["tmux", "list-clients"]).output.decode()
        if not clients.strip():
            break
        await asyncio.sleep(0.1)
    assert clients.strip() == ""
    assert "tmux" in container.exec_run(["ps", "-eo", "comm"]).output.decode()  # server lives


async def test_flood_is_paced_and_ctrl_c_stops_it(alice, hello_lab):
    session = await start_lab(alice, hello_lab)
    communicator = await connect_terminal(session, alice)
    screen = Screen(communicator)
    await screen.until(b"# ")
    await screen.type("yes flood-line\r")
    # Read without acknowledging: the server must stop at the high watermark.
    unacked = 0
    while not await communicator.receive_nothing(timeout=1.5):
        message = await communicator.receive_output()
        unacked += len(message.get("bytes") or b"")
        assert unacked < protocol.HIGH_WATERMARK + 2 * protocol.READ_CHUNK
    assert unacked > protocol.HIGH_WATERMARK  # it did send a window's worth first
    await screen.type("\x03")
    await communicator.send_to(text_data=json.dumps({"type": protocol.ACK, "bytes": unacked}))
    await screen.type("echo stopped-$((1+1))\r")
    await screen.until(b"stopped-2", timeout=20)
    await communicator.disconnect()


async def test_anonymous_is_refused_with_4001(alice, hello_lab):
    session = await start_lab(alice, hello_lab)
    assert await close_code(await connect_terminal(session, None)) == protocol.UNAUTHENTICATED


async def test_other_student_is_refused_with_4003_and_sees_nothing(alice, bob, hello_lab):
    session = await start_lab(alice, hello_lab)
    communicator = await connect_terminal(session, bob)
    message = await communicator.receive_output(timeout=10)
    assert message == {"type": "websocket.close", "code": protocol.FORBIDDEN}


async def test_even_the_instructor_of_the_class_may_not_attach(alice, carol, hello_lab):
    # Instructors watch, with the student's consent (tests/docker/test_watching.py).
    session = await start_lab(alice, hello_lab)
    assert await close_code(await connect_terminal(session, carol)) == protocol.FORBIDDEN


async def test_instructor_of_another_class_may_not(alice, dave, hello_lab):
    session = await start_lab(alice, hello_lab)
    assert await close_code(await connect_terminal(session, dave)) == protocol.FORBIDDEN


async def test_oversized_frame_closes_with_4008(alice, hello_lab):
    session = await start_lab(alice, hello_lab)
    communicator = await connect_terminal(session, alice)
    await communicator.send_to(bytes_data=b"x" * (protocol.MAX_INPUT_FRAME + 1))
    assert await close_code(communicator) == protocol.POLICY


async def test_foreign_origin_is_refused(alice, hello_lab, caplog):
    from channels.testing import WebsocketCommunicator

    from labsite.asgi import application
    from tests.docker.conftest import login_cookie

    session = await start_lab(alice, hello_lab)
    headers = [
        (b"origin", b"http://evil.example"),
        (b"cookie", f"sessionid={await login_cookie(alice)}".encode()),
    ]
    communicator = WebsocketCommunicator(
        application, f"/ws/sessions/{session.pk}/terminals/1/", headers=headers
    )
    connected, _ = await communicator.connect(timeout=10)
    assert not connected
    assert "foreign origin http://evil.example" in caplog.text


async def test_reconnect_replays_scrollback_beyond_the_screen(alice, hello_lab):
    session = await start_lab(alice, hello_lab)
    first = Screen(await connect_terminal(session, alice, rows=10))
    await first.until(b"# ")
    await first.type("seq 1 60 | sed s/^/row-/\r")
    await first.until(b"row-60")
    await first.communicator.disconnect()
    second = Screen(await connect_terminal(session, alice, rows=10))
    await second.until(b"row-60")
    assert b"row-5\r\n" in second.data  # long scrolled off a 10-row screen, yet replayed
    await second.communicator.disconnect()


async def test_control_messages_count_against_the_rate_limit(alice, hello_lab):
    session = await start_lab(alice, hello_lab)
    communicator = await connect_terminal(session, alice)
    # A message that mentions "ack" but is not an ack may not slip past the limit.
    disguised = json.dumps({"type": "ping", "note": "ack"})
    for _ in range(protocol.INPUT_RATE_BURST + 200):
        await communicator.send_to(text_data=disguised)
    assert await close_code(communicator) == protocol.POLICY


async def test_acknowledgements_are_never_rate_limited(alice, hello_lab):
    assert not protocol.ACKS_COUNT_AGAINST_RATE
    session = await start_lab(alice, hello_lab)
    screen = Screen(await connect_terminal(session, alice))
    await screen.until(b"# ")
    ack = json.dumps({"type": protocol.ACK, "bytes": 1})
    for _ in range(protocol.INPUT_RATE_BURST + 50):
        await screen.communicator.send_to(text_data=ack)
    await screen.type("echo still-open\r")
    await screen.until(b"still-open")
    await screen.communicator.disconnect()
