"""Warm pools against the real Docker Engine: a Start takes a ready sandbox, the sandbox
is the student's in every record the reconciler uses, a restart keeps both the claimed
sandbox and the unclaimed ones, and an edit of the lab removes what was made before it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from apps.pools.keeper import Keeper
from apps.pools.models import Member, PoolSize, WarmSandbox
from apps.sessions import runner, services
from apps.sessions.models import LabSession, State
from apps.sessions.reconciler import Reconciler
from provisioning.base import LABEL_OWNER, LABEL_SESSION, LABEL_SITE
from tests.conftest import TEST_SITE
from tests.docker.conftest import Screen, connect_terminal

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


def containers(client) -> dict[str, dict]:
    """{session label: labels} of this test site's running containers."""
    found = client.containers.list(filters={"label": f"{LABEL_SITE}={TEST_SITE}"})
    return {c.labels[LABEL_SESSION]: c.labels for c in found}


async def reconcile() -> None:
    """One pass of a freshly made reconciler (as after a restart), and what it handed out."""
    await Reconciler(["docker"]).run_once()
    await runner.wait_idle()


async def fill_pool(lab, size: int) -> list[WarmSandbox]:
    await database_sync_to_async(PoolSize.objects.create)(lab=lab, size=size)
    for _ in range(10):
        await reconcile()
        ready = await database_sync_to_async(list)(
            WarmSandbox.objects.filter(lab=lab, state=Member.READY)
        )
        if len(ready) >= size:
            return ready
    raise AssertionError(f"the pool never reached {size}")


async def test_start_claims_a_ready_sandbox_and_the_student_gets_a_prompt(
    alice, hello_lab, docker_client
):
    ready = await fill_pool(hello_lab, 1)
    session, created = await database_sync_to_async(services.start_session)(alice, hello_lab)
    # Running at once, in the pool sandbox, which nobody else can take any more.
    assert created and session.state == State.RUNNING
    assert session.pk == ready[0].pk and session.expires_at > timezone.now()
    assert not await database_sync_to_async(WarmSandbox.objects.filter(pk=session.pk).exists)()
    screen = Screen(await connect_terminal(session, alice))
    await screen.until(b"# ")
    await screen.type("echo claimed-$((6*7)); hostname\r")
    await screen.until(b"claimed-42")
    await screen.communicator.disconnect()
    # Its labels carry the session's id, and no owner (the database says whose it is).
    labels = containers(docker_client)[str(session.pk)]
    assert LABEL_OWNER not in labels


async def test_after_a_restart_the_claimed_sandbox_is_the_students_and_the_rest_stay_in_the_pool(
    alice, bob, hello_lab, docker_client
):
    await fill_pool(hello_lab, 2)
    session, _ = await database_sync_to_async(services.start_session)(alice, hello_lab)
    # The site restarts: a new reconciler and keeper, nothing in memory.
    await reconcile()
    await reconcile()
    running = containers(docker_client)
    assert str(session.pk) in running  # adopted as alice's, not removed as an orphan
    session = await database_sync_to_async(LabSession.objects.get)(pk=session.pk)
    assert session.state == State.RUNNING
    members = await database_sync_to_async(list)(WarmSandbox.objects.filter(lab=hello_lab))
    # The unclaimed one is still a pool member, and the pool refilled to two.
    assert len(members) == 2 and all(str(m.pk) in running for m in members)
    # Stopping alice's lab removes her sandbox; it never goes back to the pool.
    await database_sync_to_async(services.request_stop)(session, services.EndReason.USER)
    await reconcile()
    assert str(session.pk) not in containers(docker_client)
    assert not await database_sync_to_async(WarmSandbox.objects.filter(pk=session.pk).exists)()


async def test_an_edit_of_the_lab_removes_its_unclaimed_sandboxes(alice, hello_lab, docker_client):
    old = await fill_pool(hello_lab, 1)
    await database_sync_to_async(type(hello_lab).objects.filter(pk=hello_lab.pk).update)(
        memory_mib=hello_lab.memory_mib + 64
    )
    await reconcile()
    await reconcile()
    assert str(old[0].pk) not in containers(docker_client)
    # A Start after the edit never gets the old sandbox: a new one is made (or was refilled).
    hello_lab = await database_sync_to_async(type(hello_lab).objects.get)(pk=hello_lab.pk)
    session, _ = await database_sync_to_async(services.start_session)(alice, hello_lab)
    assert session.pk != old[0].pk


async def test_a_pool_sandbox_that_dies_is_never_handed_out(alice, hello_lab, docker_client):
    ready = await fill_pool(hello_lab, 1)
    docker_client.containers.get(ready[0].sandbox_name).kill()
    await database_sync_to_async(WarmSandbox.objects.filter(pk=ready[0].pk).update)(
        ready_at=timezone.now() - timedelta(minutes=1)
    )
    await Reconciler(["docker"]).sync_engine("docker")
    session, _ = await database_sync_to_async(services.start_session)(alice, hello_lab)
    assert session.pk != ready[0].pk
    await runner.wait_idle()


async def test_waiting_students_make_the_pools_give_their_room_back(hello_lab, docker_client):
    ready = await fill_pool(hello_lab, 1)
    from apps.pools.keeper import plan

    # A student waits in the queue for a host: the keeper removes ready members for them.
    await database_sync_to_async(_queue_a_student)(hello_lab)
    todo = await database_sync_to_async(plan)(timezone.now())
    assert ready[0].pk in todo.remove and not todo.start
    await Keeper().run_once()
    await runner.wait_idle()
    assert str(ready[0].pk) not in containers(docker_client)


def _queue_a_student(lab) -> None:
    from django.contrib.auth import get_user_model

    waiting = get_user_model().objects.create_user("waiting-student")
    LabSession.objects.create(owner=waiting, lab=lab, backend="", state=State.REQUESTED)


async def test_a_class_pressing_start_at_once_gets_ten_different_ready_sandboxes(
    django_user_model, hello_lab, docker_client
):
    class_size = 10
    ready = await fill_pool(hello_lab, class_size)
    students = [
        await database_sync_to_async(django_user_model.objects.create_user)(f"s{i:02d}")
        for i in range(class_size)
    ]
    started = await asyncio.gather(
        *(database_sync_to_async(services.start_session)(s, hello_lab) for s in students)
    )
    sessions = [session for session, _created in started]
    assert {s.state for s in sessions} == {State.RUNNING}
    assert {s.pk for s in sessions} == {m.pk for m in ready}  # each a different one
    pairs = zip(sessions, students, strict=True)
    screens = [Screen(await connect_terminal(session, user)) for session, user in pairs]
    for i, screen in enumerate(screens):
        await screen.type(f"echo mine-{i}-$((40+2))\r")
    for i, screen in enumerate(screens):
        await screen.until(f"mine-{i}-42".encode())
        await screen.communicator.disconnect()
