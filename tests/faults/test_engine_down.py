"""The Docker Engine behind the labs stops for half a minute, then comes back.

What a student should notice: while it is down, their lab still shows as running, the page
and the API answer (a check says in words that the lab servers cannot be reached: 503, not
500) and nothing is ended by mistake. Once the engine is back its containers are gone
(restart policy "no"): the next reconciler pass ends the session and says why, and Start
gives a fresh lab. The engine is a private dockerd (conftest.py), never the machine's.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from apps.sessions import runner, services
from apps.sessions.engines import close_backends
from apps.sessions.models import EndReason, State
from apps.terminals import protocol
from provisioning.base import LABEL_SESSION, SandboxStatus
from tests.docker.conftest import close_code, connect_terminal, start_lab
from tests.faults.conftest import client_for, reconcile, reload

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]
OUTAGE_SECONDS = 30
#: Reconciler passes during the outage, at least (the real loop runs every 10 s).
PASS_EVERY = 5


async def test_engine_down_for_30_s_ends_nothing_and_afterwards_the_lost_lab_is_explained(
    alice, hello_lab, site_on_private_engine
):
    engine = site_on_private_engine
    session = await start_lab(alice, hello_lab)
    client = await client_for(alice)
    lab_page = await database_sync_to_async(hello_lab.get_absolute_url)()

    await asyncio.to_thread(engine.stop)
    assert not engine.answers(), "the private dockerd still answers after SIGTERM"
    loop = asyncio.get_running_loop()
    outage_ends = loop.time() + OUTAGE_SECONDS
    passes = 0
    while loop.time() < outage_ends:
        await reconcile()
        passes += 1
        assert (await reload(session)).state == State.RUNNING, (
            f"reconciler pass {passes} with the engine down ended the session: "
            f"{(await reload(session)).failure_message}"
        )
        await _still_answers(client, session, lab_page)
        await asyncio.sleep(min(PASS_EVERY, max(0, outage_ends - loop.time())))
    assert passes >= 3
    terminal = await connect_terminal(session, alice)
    assert await close_code(terminal) == protocol.ENGINE_ERROR
    assert (await reload(session)).state == State.RUNNING

    await asyncio.to_thread(engine.start)
    container = engine.client.containers.get(session.sandbox_name)
    assert container.status == "exited", "the lab container survived the engine's restart"
    await reconcile()
    ended = await reload(session)
    assert (ended.state, ended.end_reason) == (State.FAILED, EndReason.EXITED)
    assert ended.failure_message.startswith(services.gone_message(SandboxStatus.EXITED))
    body = (await client.get(f"/api/sessions/{session.pk}/")).json()
    assert (body["state"], body["end_reason"]) == ("failed", "exited")
    assert body["failure_message"] == ended.failure_message

    again = await client.post(f"/api/labs/{hello_lab.pk}/sessions/")
    assert again.status_code == 201, again.content
    assert again.json()["id"] != str(session.pk)
    await runner.wait_idle()
    fresh = (await client.get(f"/api/sessions/{again.json()['id']}/")).json()
    assert fresh["state"] == "running", fresh["failure_message"]
    label = f"{LABEL_SESSION}={fresh['id']}"
    assert [
        c.status for c in engine.client.containers.list(all=True, filters={"label": label})
    ] == ["running"]


async def test_a_process_that_never_reached_the_engine_also_answers_503(
    alice, hello_lab, site_on_private_engine
):
    """A web process (re)started while the engine is down has not talked to it yet: its
    first engine call must still say "cannot be reached", not fail with a 500."""
    engine = site_on_private_engine
    session = await start_lab(alice, hello_lab)
    client = await client_for(alice)
    lab_page = await database_sync_to_async(hello_lab.get_absolute_url)()
    await asyncio.to_thread(engine.stop)
    await close_backends()  # the next call builds the backend anew, as a new process would

    await reconcile()
    assert (await reload(session)).state == State.RUNNING
    await _still_answers(client, session, lab_page)
    terminal = await connect_terminal(session, alice)
    assert await close_code(terminal) == protocol.ENGINE_ERROR


async def _still_answers(client, session, lab_page: str) -> None:
    """The lab page, the session and a check answer; the check says why it cannot run."""
    page = await client.get(lab_page)
    assert page.status_code == 200
    detail = await client.get(f"/api/sessions/{session.pk}/")
    assert detail.status_code == 200 and detail.json()["state"] == "running"
    check = await client.post(f"/api/sessions/{session.pk}/steps/1/check/")
    assert check.status_code == 503, check.content.decode()[:500]
    error = check.json()["error"]
    assert error["code"] == "engine_unavailable"
    assert error["message"] and "unix://" not in error["message"]
