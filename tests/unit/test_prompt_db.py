"""A WebSocket is accepted, and its user and session looked up, while the process's one
sync thread is busy (a storm of starts keeps it so): those reads run on a pool of their
own (labsite/prompt_db.py), so no handshake waits past Daphne's timeout behind them."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from apps.sessions.models import LabSession, State
from apps.terminals import protocol
from tests.docker.conftest import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_socket_is_accepted_and_authorised_while_the_sync_thread_is_busy(alice, hello_lab):
    from labsite.asgi import application

    session = await database_sync_to_async(LabSession.objects.create)(
        owner=alice, lab=hello_lab, backend="docker", state=State.STOPPED
    )
    cookie = await login_cookie(alice)
    release = threading.Event()
    busy = asyncio.ensure_future(database_sync_to_async(release.wait)(30))  # a long start
    try:
        communicator = WebsocketCommunicator(
            application,
            f"/ws/sessions/{session.pk}/terminals/1/",
            headers=[(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000"),
                     (b"cookie", f"sessionid={cookie}".encode())],
        )  # fmt: skip
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        # Authorised as alice (her own session), and told it is not running: all of it
        # decided while the sync thread is still held.
        closed = await communicator.receive_output(timeout=10)
        assert (closed["type"], closed.get("code")) == ("websocket.close", protocol.NOT_RUNNING)
        assert not busy.done()
    finally:
        release.set()
        await busy
