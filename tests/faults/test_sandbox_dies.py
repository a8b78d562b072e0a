"""A lab container dies by itself: its PID 1 is killed from outside, as the kernel's OOM
killer or a crash would, without the site asking for it.

What a student should notice: the next reconciler pass ends the session and says why, the
open terminal is told the sandbox ended (close code 4010, so the page stops reconnecting
and shows the reason), and Check answers JSON 409 instead of failing with a 500.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from apps.sessions import services
from apps.sessions.models import EndReason, State
from apps.terminals import protocol
from provisioning.base import SandboxStatus
from tests.docker.conftest import Screen, close_code, connect_terminal, remove_test_sandboxes
from tests.docker.conftest import start_lab as start_lab_on_engine
from tests.faults.conftest import client_for, reconcile, reload

pytestmark = [
    pytest.mark.docker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("idle_backends"),
]


@pytest.fixture
def engine(docker_client):
    remove_test_sandboxes(docker_client)
    yield docker_client
    remove_test_sandboxes(docker_client)


async def test_killed_pid_1_ends_the_session_closes_the_terminal_and_check_says_409(
    alice, hello_lab, engine
):
    session = await start_lab_on_engine(alice, hello_lab)
    terminal = await connect_terminal(session, alice)
    screen = Screen(terminal)
    await screen.type("echo alive-$((40+2))\r")
    await screen.until(b"alive-42")

    container = engine.containers.get(session.sandbox_name)
    os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)  # docker-init, from the host
    await _until_exited(container)
    await reconcile()

    ended = await reload(session)
    assert (ended.state, ended.end_reason) == (State.FAILED, EndReason.EXITED)
    assert ended.failure_message.startswith(services.gone_message(SandboxStatus.EXITED))
    assert "137" in ended.failure_message  # the engine's detail: killed by SIGKILL
    assert await close_code(terminal) == protocol.SANDBOX_ENDED
    client = await client_for(alice)
    check = await client.post(f"/api/sessions/{session.pk}/steps/1/check/")
    assert check.status_code == 409, check.content.decode()[:500]
    assert check.json()["error"]["code"] == "not_running"
    assert check.json()["error"]["message"]


async def test_a_terminal_opened_after_the_death_is_told_it_ended_before_any_reconcile(
    alice, hello_lab, engine
):
    """The page reconnects a dropped terminal: that attempt finds the sandbox gone, ends
    the session and says so, without waiting for the reconciler."""
    session = await start_lab_on_engine(alice, hello_lab)
    container = engine.containers.get(session.sandbox_name)
    os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)
    await _until_exited(container)

    terminal = await connect_terminal(session, alice)
    assert await close_code(terminal) == protocol.SANDBOX_ENDED
    ended = await reload(session)
    assert (ended.state, ended.end_reason) == (State.FAILED, EndReason.EXITED)
    assert ended.failure_message.startswith(services.gone_message(SandboxStatus.EXITED))


async def _until_exited(container, seconds: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        await asyncio.to_thread(container.reload)
        if container.status == "exited":
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the container is still {container.status} after its PID 1 was killed")
