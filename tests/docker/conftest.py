"""Real Docker Engine fixtures. Everything a test creates carries the test site label and
is removed afterwards; a failing test gets the containers' state printed."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import docker
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from apps.sessions import runner, services
from apps.sessions.engines import close_backends
from apps.sessions.models import LabSession, State
from provisioning.base import LABEL_SITE
from provisioning.images import docker_base
from tests.conftest import TEST_SITE

pytestmark = pytest.mark.docker


@pytest.fixture(scope="session")
def docker_client():
    client = docker.from_env()
    remove_sandboxes_of_dead_runs(client)
    if not docker_base.image_exists("labsite/base:latest"):
        docker_base.build()
    yield client
    client.close()


def remove_test_sandboxes(client, site: str = TEST_SITE) -> None:
    label = f"{LABEL_SITE}={site}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    for network in client.networks.list(filters={"label": label}):
        network.remove()


def remove_sandboxes_of_dead_runs(client) -> None:
    for container in client.containers.list(all=True, filters={"label": LABEL_SITE}):
        match = re.fullmatch(r"labsite-test-(\d+)(-.*)?", container.labels.get(LABEL_SITE, ""))
        if match and not Path(f"/proc/{match[1]}").exists():
            container.remove(force=True)


@pytest.fixture(autouse=True)
def clean_engine(docker_client, request):
    remove_test_sandboxes(docker_client)
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        label = f"{LABEL_SITE}={TEST_SITE}"
        for container in docker_client.containers.list(all=True, filters={"label": label}):
            print(f"--- {container.name}: {container.status}")
            print(container.logs(tail=50).decode(errors="replace"))
    remove_test_sandboxes(docker_client)


@pytest.fixture(autouse=True)
async def fresh_backends():
    yield
    await runner.wait_idle()
    await close_backends()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


async def start_lab(user, lab) -> LabSession:
    """Press Start and wait until the sandbox runs, as the page would."""
    session, _created = await database_sync_to_async(services.start_session)(user, lab)
    await runner.provision(session.pk)
    session = await database_sync_to_async(LabSession.objects.get)(pk=session.pk)
    assert session.state == State.RUNNING, session.failure_message
    return session


@database_sync_to_async
def login_cookie(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def connect_terminal(
    session, user=None, tab: int = 1, cols: int = 80, rows: int = 24, cookie: str | None = None
):
    """A terminal socket as ``user``'s browser opens it (or with the login ``cookie``)."""
    from labsite.asgi import application

    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
    if user is not None and cookie is None:
        cookie = await login_cookie(user)
    if cookie is not None:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    path = f"/ws/sessions/{session.pk}/terminals/{tab}/?cols={cols}&rows={rows}"
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _subprotocol = await communicator.connect(timeout=10)
    assert connected
    return communicator


class Screen:
    """Collects terminal output from a communicator, acknowledging it like xterm.js does."""

    def __init__(self, communicator) -> None:
        self.communicator = communicator
        self.data = b""
        self.controls: list[dict] = []
        self.closed_with: int | None = None

    async def until(self, needle: bytes, timeout: float = 10) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while needle not in self.data:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{needle!r} not seen; got {self.data[-400:]!r}")
            await self.pump(remaining)
        return self.data

    async def pump(self, timeout: float) -> None:
        message = await self.communicator.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            self.closed_with = message.get("code")
            raise AssertionError(f"socket closed with {self.closed_with}")
        if message.get("bytes") is not None:
            self.data += message["bytes"]
            await self.communicator.send_to(
                text_data=json.dumps({"type": "ack", "bytes": len(message["bytes"])})
            )
        elif message.get("text") is not None:
            self.controls.append(json.loads(message["text"]))

    async def type(self, text: str) -> None:
        await self.communicator.send_to(bytes_data=text.encode())


async def close_code(communicator, timeout: float = 10) -> int:
    """Skip output until the server closes the socket; return its close code."""
    while True:
        message = await communicator.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return message.get("code")
