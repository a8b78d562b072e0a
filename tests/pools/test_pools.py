"""A pool of two real Docker Engines (tests.engines.PrivateDockerd: each its own dockerd,
network namespace, socket, data root and bridge) behind the site's placement: sessions
spread across them, a drained engine gets none, a full pool queues the student and starts
them when a place frees, a lab that needs a label lands only where it is, and an engine
killed outright has its sessions ended after the grace period while new starts land on
the other. And an engine reached as a remote one is, over TCP with TLS client certificates."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

from apps.hosts.models import Health, Host, Pool
from apps.sessions import runner, sandbox, services
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
    rows = LabSession.objects.select_related("host", "owner", "lab__module")
    return await database_sync_to_async(rows.get)(pk=session.pk)


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


def _certificates(directory, engine_ip: str) -> dict[str, str]:
    """A CA, a server certificate for ``engine_ip`` and a client certificate, as an admin
    makes them for dockerd --tlsverify (docs/deployment.md)."""
    directory.mkdir()

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, cwd=directory)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem",
        "-out", "ca.pem", "-days", "1", "-subj", "/CN=labsite test CA")  # fmt: skip
    for name, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem",
            "-out", f"{name}.csr", "-subj", f"/CN={name}")  # fmt: skip
        ext = directory / f"{name}.ext"
        ext.write_text(f"subjectAltName=IP:{engine_ip}\nextendedKeyUsage={usage}\n")
        run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey",
            "ca-key.pem", "-CAcreateserial", "-out", f"{name}.pem", "-days", "1",
            "-extfile", ext.name)  # fmt: skip
    return {n: str(directory / n) for n in ("ca.pem", "server.pem", "server-key.pem",
                                               "client.pem", "client-key.pem")}  # fmt: skip


@pytest.fixture(scope="module")
def tls_engine():
    """A Docker Engine reached only as a remote one is: over TCP with TLS client
    certificates, through a veth pair into its own network namespace."""
    engine = PrivateDockerd()
    try:
        _host_ip, engine_ip = engine.link_to_host(200 + os.getpid() % 50)
        certs = _certificates(engine.root / "tls", engine_ip)
        engine.tcp_url = f"tcp://{engine_ip}:2376"
        engine.certs = certs
        engine.start(extra_args=(
            "-H", engine.tcp_url, "--tlsverify", "--tlscacert", certs["ca.pem"],
            "--tlscert", certs["server.pem"], "--tlskey", certs["server-key.pem"],
        ))  # fmt: skip
        engine.load_busybox_image(*LAB_IMAGE)
        yield engine
    finally:
        engine.destroy()


async def test_a_remote_engine_over_tls_runs_sessions_and_checks(tls_engine, hello_lab):
    host = await database_sync_to_async(_tls_host)(tls_engine, with_client_cert=True)
    (student,) = await students(1, "tls")
    session = await press_start(student, hello_lab)
    assert (session.state, session.host_id) == (State.RUNNING, host.pk)
    assert len(sandboxes_on(tls_engine)) == 1
    result = await sandbox.check_step(student, session, 1)  # an exec over the same TLS
    assert result["passed"] is False and "/root/answers/hello" in result["output"]
    await Reconciler([host.backend_key]).run_once()
    await runner.wait_idle()  # the host's facts are written by a task of that pass
    host = await database_sync_to_async(Host.objects.get)(pk=host.pk)
    assert host.health == Health.UP and host.facts["version"]


async def test_a_remote_engine_refusing_the_site_is_shown_down_with_the_reason(
    tls_engine, hello_lab
):
    host = await database_sync_to_async(_tls_host)(tls_engine, with_client_cert=False)
    await Reconciler([host.backend_key]).run_once()
    await runner.wait_idle()
    host = await database_sync_to_async(Host.objects.get)(pk=host.pk)
    assert host.health == Health.DOWN
    assert "cannot be reached" in host.last_error and tls_engine.tcp_url[6:] in host.last_error


def _tls_host(engine, with_client_cert: bool) -> Host:
    Host.objects.all().delete()
    pool, _ = Pool.objects.get_or_create(name="default")
    certs = engine.certs
    return Host.objects.create(
        pool=pool, name="remote-tls", engine="docker", backend="docker",
        endpoint=engine.tcp_url, tls_ca=certs["ca.pem"],
        tls_cert=certs["client.pem"] if with_client_cert else "",
        tls_key=certs["client-key.pem"] if with_client_cert else "",
        health=Health.UP,
    )  # fmt: skip
