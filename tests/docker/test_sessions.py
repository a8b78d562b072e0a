"""A session's life through the JSON API and the reconciler, on the real engine."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.test import AsyncClient
from django.utils import timezone

from apps.sessions import runner
from apps.sessions.engines import close_backends
from apps.sessions.models import EndReason, LabSession, State
from apps.sessions.reconciler import Reconciler
from provisioning.base import LABEL_SESSION, LABEL_SITE
from tests.conftest import TEST_SITE
from tests.docker.conftest import start_lab

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


async def client_for(user) -> AsyncClient:
    client = AsyncClient(enforce_csrf_checks=False)
    await sync_to_async(client.force_login)(user)
    return client


async def reload(session) -> LabSession:
    return await database_sync_to_async(LabSession.objects.get)(pk=session.pk)


def containers(docker_client):
    return docker_client.containers.list(all=True, filters={"label": f"{LABEL_SITE}={TEST_SITE}"})


async def test_start_via_api_runs_a_container_and_a_second_start_returns_it(
    alice, hello_lab, docker_client
):
    client = await client_for(alice)
    first = await client.post(f"/api/labs/{hello_lab.pk}/sessions/")
    second = await client.post(f"/api/labs/{hello_lab.pk}/sessions/")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["terminal_url"] == f"/ws/sessions/{first.json()['id']}/terminals/"
    await runner.wait_idle()
    body = (await client.get(f"/api/sessions/{first.json()['id']}/")).json()
    assert body["state"] == "running"
    assert 0 < body["seconds_left"] <= 30 * 60
    assert len(containers(docker_client)) == 1


async def test_stop_removes_everything(alice, hello_lab, docker_client):
    session = await start_lab(alice, hello_lab)
    client = await client_for(alice)
    response = await client.post(f"/api/sessions/{session.pk}/stop/")
    assert response.status_code == 200
    await runner.wait_idle()
    assert (await reload(session)).state == State.STOPPED
    assert containers(docker_client) == []


async def test_other_student_gets_404_for_every_action(alice, bob, hello_lab):
    session = await start_lab(alice, hello_lab)
    client = await client_for(bob)
    for method, path in [
        ("get", f"/api/sessions/{session.pk}/"),
        ("post", f"/api/sessions/{session.pk}/stop/"),
        ("post", f"/api/sessions/{session.pk}/extend/"),
        ("post", f"/api/sessions/{session.pk}/reset/"),
        ("post", f"/api/sessions/{session.pk}/steps/1/check/"),
    ]:
        response = await getattr(client, method)(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    assert (await reload(session)).state == State.RUNNING


async def test_check_fails_then_passes_and_is_recorded(alice, hello_lab, docker_client):
    session = await start_lab(alice, hello_lab)
    client = await client_for(alice)
    failed = (await client.post(f"/api/sessions/{session.pk}/steps/1/check/")).json()
    assert failed["passed"] is False and "/root/answers/hello" in failed["output"]
    docker_client.containers.get(session.sandbox_name).exec_run(
        ["sh", "-c", "mkdir -p /root/answers && echo hi > /root/answers/hello"]
    )
    passed = (await client.post(f"/api/sessions/{session.pk}/steps/1/check/")).json()
    assert passed == {
        "step": 1, "passed": True, "output": "很好", "timed_out": False, "attempts_left": None
    }  # fmt: skip
    body = (await client.get(f"/api/sessions/{session.pk}/")).json()
    assert body["steps"][0]["passed"] is True


async def test_slow_check_times_out(alice, hello_lab, settings):
    settings.LABSITE_CHECK_TIMEOUT = 1
    session = await start_lab(alice, hello_lab)
    client = await client_for(alice)
    result = (await client.post(f"/api/sessions/{session.pk}/steps/2/check/")).json()
    assert result["passed"] is False and result["timed_out"] is True


async def test_extend_adds_time_until_the_limit(alice, hello_lab, settings):
    settings.LABSITE_MAX_EXTENSIONS = 1
    session = await start_lab(alice, hello_lab)
    client = await client_for(alice)
    before = (await client.get(f"/api/sessions/{session.pk}/")).json()["seconds_left"]
    extended = (await client.post(f"/api/sessions/{session.pk}/extend/")).json()
    assert extended["seconds_left"] >= before + settings.LABSITE_EXTEND_MINUTES * 60 - 5
    again = await client.post(f"/api/sessions/{session.pk}/extend/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "no_more_extensions"


async def test_reset_gives_a_fresh_container(alice, hello_lab, docker_client):
    session = await start_lab(alice, hello_lab)
    docker_client.containers.get(session.sandbox_name).exec_run(["touch", "/root/old-file"])
    client = await client_for(alice)
    response = await client.post(f"/api/sessions/{session.pk}/reset/")
    assert response.status_code == 201
    await runner.wait_idle()
    new = await database_sync_to_async(LabSession.objects.get)(pk=response.json()["id"])
    assert new.state == State.RUNNING and new.pk != session.pk
    assert (await reload(session)).end_reason == EndReason.RESET
    fresh = docker_client.containers.get(new.sandbox_name)
    assert fresh.exec_run(["test", "-e", "/root/old-file"]).exit_code == 1
    assert [c.name for c in containers(docker_client)] == [new.sandbox_name]


async def test_reset_keeps_the_clock_and_the_extensions_used(alice, hello_lab, settings):
    """A Reset is a clean sandbox, not more time: otherwise it would sidestep Extend's limit."""
    settings.LABSITE_MAX_EXTENSIONS = 1
    session = await start_lab(alice, hello_lab)
    client = await client_for(alice)
    assert (await client.post(f"/api/sessions/{session.pk}/extend/")).status_code == 200
    before = await reload(session)
    response = await client.post(f"/api/sessions/{session.pk}/reset/")
    await runner.wait_idle()
    new = await database_sync_to_async(LabSession.objects.get)(pk=response.json()["id"])
    assert new.state == State.RUNNING
    assert (new.expires_at, new.extensions) == (before.expires_at, 1)
    assert (await client.post(f"/api/sessions/{new.pk}/extend/")).status_code == 409


async def test_session_limit_per_student(alice, hello_lab, course, settings):
    settings.LABSITE_MAX_ACTIVE_SESSIONS = 1
    await start_lab(alice, hello_lab)
    other = await database_sync_to_async(lambda: _copy_lab(hello_lab, "hello-again"))()
    client = await client_for(alice)
    response = await client.post(f"/api/labs/{other.pk}/sessions/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "too_many_sessions"


def _copy_lab(lab, slug):
    lab.pk = None
    lab.slug = slug
    lab.save()
    return lab


async def reconcile() -> None:
    """One reconciler pass, and the starts and stops it handed out."""
    await Reconciler(["docker"]).run_once()
    await runner.wait_idle()


async def test_time_limit_expires_and_removes(alice, hello_lab, docker_client):
    session = await start_lab(alice, hello_lab)
    await database_sync_to_async(LabSession.objects.filter(pk=session.pk).update)(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    await reconcile()
    await reconcile()
    session = await reload(session)
    assert (session.state, session.end_reason) == (State.EXPIRED, EndReason.TIME_LIMIT)
    assert containers(docker_client) == []


async def test_idle_session_is_stopped(alice, hello_lab, docker_client, settings):
    session = await start_lab(alice, hello_lab)
    await database_sync_to_async(LabSession.objects.filter(pk=session.pk).update)(
        last_activity_at=timezone.now() - timedelta(minutes=settings.LABSITE_IDLE_MINUTES + 1)
    )
    await reconcile()
    await reconcile()
    session = await reload(session)
    assert (session.state, session.end_reason) == (State.EXPIRED, EndReason.IDLE)
    assert containers(docker_client) == []


async def test_restart_adopts_running_container_and_removes_orphan(alice, hello_lab, docker_client):
    session = await start_lab(alice, hello_lab)
    orphan = docker_client.containers.run(
        "labsite/base", ["sleep", "infinity"], detach=True, name=f"{TEST_SITE}-orphan",
        labels={LABEL_SITE: TEST_SITE, LABEL_SESSION: "00000000-0000-0000-0000-000000000000"},
    )  # fmt: skip
    await close_backends()  # the "restart": a new process with nothing in memory
    await reconcile()
    assert (await reload(session)).state == State.RUNNING
    names = [c.name for c in containers(docker_client)]
    assert names == [session.sandbox_name]
    assert orphan.name not in names


async def test_vanished_container_marks_session_lost(alice, hello_lab, docker_client):
    session = await start_lab(alice, hello_lab)
    docker_client.containers.get(session.sandbox_name).remove(force=True)
    await reconcile()
    session = await reload(session)
    assert (session.state, session.end_reason) == (State.FAILED, EndReason.LOST)
    assert "Start the lab again" in session.failure_message or "重新开始" in session.failure_message


async def test_request_left_by_a_dead_process_is_started_by_the_loop(
    alice, hello_lab, docker_client
):
    from apps.sessions import services

    session, _ = await database_sync_to_async(services.start_session)(alice, hello_lab)
    await database_sync_to_async(LabSession.objects.filter(pk=session.pk).update)(
        created_at=timezone.now() - timedelta(minutes=1)
    )
    await reconcile()
    assert (await reload(session)).state == State.RUNNING


async def test_missing_image_fails_with_a_readable_message(alice, hello_lab, docker_client):
    from apps.sessions import services

    await database_sync_to_async(type(hello_lab).objects.filter(pk=hello_lab.pk).update)(
        environment="labsite/does-not-exist"
    )
    hello_lab.environment = "labsite/does-not-exist"
    session, _ = await database_sync_to_async(services.start_session)(alice, hello_lab)
    await runner.provision(session.pk)
    session = await reload(session)
    assert session.state == State.FAILED
    assert "image is not available" in session.failure_message or "镜像" in session.failure_message
    assert "labsite/does-not-exist" not in session.failure_message  # no engine detail
    assert containers(docker_client) == []


async def test_lab_with_its_own_dockerfile_builds_its_image_once(alice, course, docker_client):
    from apps.courses.models import Lab

    lab = await database_sync_to_async(Lab.objects.select_related("module").get)(
        slug="custom-image"
    )
    session = await start_lab(alice, lab)
    container = docker_client.containers.get(session.sandbox_name)
    assert container.exec_run(["cat", "/etc/lab-marker"]).output.strip() == b"built-for-this-lab"
    # runsc is not installed on this engine: the lab still runs, on runc.
    assert container.attrs["HostConfig"]["Runtime"] == "runc"
    built = docker_client.images.list(name="labsite/lab-custom-image")
    client = await client_for(alice)
    await client.post(f"/api/sessions/{session.pk}/reset/")
    await runner.wait_idle()
    assert docker_client.images.list(name="labsite/lab-custom-image") == built  # not rebuilt


async def test_reconciler_shows_admins_the_engine(alice, hello_lab):
    from apps.hosts.models import Host, Pool

    # Transactional tests flush the rows the data migration made; make the local host again.
    pool, _ = await database_sync_to_async(Pool.objects.get_or_create)(name="default")
    await database_sync_to_async(Host.objects.get_or_create)(
        name="local-docker", defaults={"pool": pool, "engine": "docker", "backend": "docker"}
    )
    await reconcile()
    host = await database_sync_to_async(Host.objects.get)(backend="docker")
    assert host.last_seen_at is not None
    assert host.facts["engine"] == "docker" and "runc" in host.facts["runtimes"]
