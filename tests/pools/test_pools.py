"""A pool of two real Docker Engines (tests.engines.PrivateDockerd: each its own dockerd,
network namespace, socket, data root and bridge) behind the site's placement: sessions
spread across them, a drained engine gets none, a full pool queues the student and starts
them when a place frees, a lab that needs a label lands only where it is, and an engine
killed outright has its sessions ended after the grace period while new starts land on
the other."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

from apps.hosts.models import Health, Host, Pool
from apps.sessions import runner, services
from apps.sessions.engines import close_backends
from apps.sessions.models import EndReason, LabSession, State
from apps.sessions.reconciler import Reconciler
from provisioning.base import LABEL_SITE
from tests.conftest import TEST_SITE
from tests.engines import PrivateDockerd, remove_netns_of_dead_runs

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]
LAB_IMAGE = ("labsite/base", "latest")


@pytest.fixture(scope="module")
def engines():
    remove_netns_of_dead_runs()
    pair = [PrivateDockerd(), PrivateDockerd()]
    try:
        for engine in pair:
            engine.start()
            engine.load_busybox_image(*LAB_IMAGE)
        yield pair
    finally:
        for engine in pair:
            engine.destroy()


@pytest.fixture
async def hosts(engines, hello_lab):
    """The site's pool: the two engines, and nothing else (not the machine's engine)."""
    a, b = await database_sync_to_async(_make_hosts)(engines)
    yield a, b
    await runner.wait_idle()
    await close_backends()
    for engine in engines:
        if not engine.running:  # killed by the test: what it left goes, then it comes back
            engine._end_leftovers()
            engine.start()
        engine.remove_all_containers()


def _make_hosts(engines) -> tuple[Host, Host]:
    Host.objects.all().delete()
    pool, _ = Pool.objects.get_or_create(name="default")
    made = [
        Host.objects.create(
            pool=pool,
            name=f"engine-{i}",
            engine="docker",
            backend="docker",
            endpoint=engine.url,
            health=Health.UP,
            max_sessions=10,
        )
        for i, engine in enumerate(engines)
    ]
    return made[0], made[1]


@database_sync_to_async
def students(n: int, prefix: str = "s") -> list:
    model = get_user_model()
    return [model.objects.create_user(username=f"{prefix}{i}", password="x") for i in range(n)]


async def press_start(user, lab) -> LabSession:
    """Start, as the API does: the row, then the runner's start, to the end."""
    session, _ = await database_sync_to_async(services.start_session)(user, lab)
    runner.kick(session.pk, State.REQUESTED)
    await runner.wait_idle()
    return await reload(session)


async def reload(session) -> LabSession:
    return await database_sync_to_async(LabSession.objects.select_related("host").get)(
        pk=session.pk
    )


def sandboxes_on(engine: PrivateDockerd) -> list:
    return engine.client.containers.list(filters={"label": f"{LABEL_SITE}={TEST_SITE}"})


async def update(host: Host, **fields) -> None:
    await database_sync_to_async(Host.objects.filter(pk=host.pk).update)(**fields)


async def test_sessions_spread_across_the_engines_of_the_pool(hosts, engines, hello_lab):
    sessions = [await press_start(user, hello_lab) for user in await students(4)]
    assert [s.state for s in sessions] == [State.RUNNING] * 4
    assert sorted(s.host.name for s in sessions) == ["engine-0"] * 2 + ["engine-1"] * 2
    assert [len(sandboxes_on(engine)) for engine in engines] == [2, 2]


async def test_a_drained_engine_gets_no_new_session(hosts, engines, hello_lab):
    drained, _other = hosts
    first = await press_start((await students(1, "before"))[0], hello_lab)
    await update(drained, draining=True)
    later = [await press_start(user, hello_lab) for user in await students(3)]
    assert all(s.host.name == "engine-1" for s in later)
    assert (await reload(first)).state == State.RUNNING  # draining ends nothing
    assert len(sandboxes_on(engines[1])) == 3 + (first.host.name == "engine-1")


async def test_a_full_pool_queues_and_starts_the_student_when_a_place_frees(
    hosts, engines, hello_lab
):
    for host in hosts:
        await update(host, max_sessions=1)
    first, second, third = await students(3)
    running = [await press_start(first, hello_lab), await press_start(second, hello_lab)]
    waiting = await press_start(third, hello_lab)
    assert (waiting.state, waiting.host) == (State.REQUESTED, None)
    assert await database_sync_to_async(services.queue_position)(waiting) == 1
    assert sum(len(sandboxes_on(e)) for e in engines) == 2

    freed = running[0]
    await database_sync_to_async(services.request_stop)(freed, EndReason.USER)
    runner.kick(freed.pk, State.STOPPING)
    await runner.wait_idle()  # the stop, then the queued start it hands on
    started = await reload(waiting)
    assert started.state == State.RUNNING and started.host_id == freed.host_id


async def test_a_lab_that_needs_a_label_lands_only_where_it_is(hosts, engines, hello_lab):
    _plain, special = hosts
    await update(special, labels=["runsc-like"])
    hello_lab.host_labels = ["runsc-like"]
    await database_sync_to_async(hello_lab.save)()
    sessions = [await press_start(user, hello_lab) for user in await students(3)]
    assert {s.host.name for s in sessions} == {"engine-1"}
    assert len(sandboxes_on(engines[0])) == 0


async def test_a_killed_engine_loses_its_sessions_after_the_grace_and_starts_go_elsewhere(
    hosts, engines, hello_lab, settings
):
    settings.LABSITE_HOST_GRACE_SECONDS = 1
    sessions = [await press_start(user, hello_lab) for user in await students(4)]
    on_dead = [s for s in sessions if s.host.name == "engine-0"]
    on_alive = [s for s in sessions if s.host.name == "engine-1"]
    assert len(on_dead) == len(on_alive) == 2

    engines[0].process.kill()
    engines[0].process.wait(timeout=30)
    reconciler = Reconciler([h.backend_key for h in hosts])
    await reconciler.run_once()
    await runner.wait_idle()
    dead = await database_sync_to_async(Host.objects.get)(pk=hosts[0].pk)
    assert dead.health == Health.DOWN and dead.last_error
    assert [(await reload(s)).state for s in on_dead] == [State.RUNNING] * 2  # within grace

    await asyncio.sleep(1.2)
    await reconciler.run_once()
    await runner.wait_idle()
    for session in on_dead:
        lost = await reload(session)
        assert (lost.state, lost.end_reason) == (State.FAILED, EndReason.HOST_DOWN)
        assert lost.failure_message == services.host_down_message()
    assert [(await reload(s)).state for s in on_alive] == [State.RUNNING] * 2
    (late,) = await students(1, "late")
    assert (await press_start(late, hello_lab)).host.name == "engine-1"
