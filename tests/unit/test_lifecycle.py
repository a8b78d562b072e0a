"""The session lifecycle under faults a real engine cannot be made to show on demand:
starts that hang, raise, or are stopped half-way; leases held by a worker that died;
an engine that stops answering. The same code paths run against real engines in
tests/docker and tests/faults."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from apps.sessions import runner, services
from apps.sessions.engines import close_backends, get_backend
from apps.sessions.models import EndReason, LabSession, State
from apps.sessions.reconciler import Reconciler
from provisioning.base import SandboxError, SandboxStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def fake_engine(settings):
    settings.LABSITE_BACKENDS = {"fake": {"BACKEND": "tests.fakes.FakeBackend"}}
    yield get_backend("fake")
    await runner.wait_idle()
    await close_backends()


@database_sync_to_async
def requested(user, lab) -> LabSession:
    session, _created = services.start_session(user, lab)
    LabSession.objects.filter(pk=session.pk).update(backend="fake")
    return LabSession.objects.get(pk=session.pk)


@database_sync_to_async
def reload(session) -> LabSession:
    return LabSession.objects.select_related("lab").get(pk=session.pk)


@database_sync_to_async
def update(session, **fields) -> None:
    LabSession.objects.filter(pk=session.pk).update(**fields)


async def until(predicate, seconds: float = 5):
    for _ in range(int(seconds / 0.02)):
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_a_start_that_raises_anything_ends_failed_in_words(alice, hello_lab, fake_engine):
    fake_engine.start_error = RuntimeError("KeyError: 'Id' at docker/api/container.py:42")
    session = await requested(alice, hello_lab)
    await runner.provision(session.pk)
    session = await reload(session)
    assert (session.state, session.end_reason) == (State.FAILED, EndReason.ERROR)
    assert "KeyError" not in session.failure_message and session.failure_message
    assert session.lease_owner == ""
    assert fake_engine.stopped == [session.sandbox_name]  # whatever it made is removed


async def test_an_engine_refusal_shows_the_students_message_not_the_engines(
    alice, hello_lab, fake_engine
):
    fake_engine.start_error = SandboxError(
        "The lab environment could not be created.", detail="OCI runtime create failed: xyz"
    )
    session = await requested(alice, hello_lab)
    await runner.provision(session.pk)
    message = (await reload(session)).failure_message
    assert "OCI runtime" not in message
    assert "could not be created" in message or "无法创建" in message


async def test_stop_during_a_slow_start_ends_stopped_not_failed(
    alice, hello_lab, fake_engine, monkeypatch
):
    monkeypatch.setattr(runner, "RENEW_SECONDS", 0.05)
    fake_engine.start_gate = asyncio.Event()  # the start hangs until the stop cancels it
    session = await requested(alice, hello_lab)
    runner.kick(session.pk, State.REQUESTED)
    await until(lambda: _started(fake_engine))
    assert await database_sync_to_async(services.request_stop)(session, EndReason.USER)
    runner.kick(session.pk, State.STOPPING)
    # The start notices at its next lease renewal and gives up.
    await until(lambda: _state_is(session, State.STOPPED))
    await until(lambda: _cancelled(fake_engine))
    await runner.wait_idle()
    assert (await reload(session)).state == State.STOPPED
    assert session.sandbox_name not in fake_engine.boxes


async def _cancelled(fake) -> bool:
    return bool(fake.cancelled)


async def _started(fake) -> bool:
    return bool(fake.started)


async def _state_is(session, state) -> bool:
    return (await reload(session)).state == state


async def test_a_live_lease_is_never_taken_over(alice, hello_lab, fake_engine):
    session = await requested(alice, hello_lab)
    await update(
        session,
        state=State.STARTING,
        lease_owner="other-host:123:abc",
        lease_expires_at=timezone.now() + timedelta(seconds=10),
    )
    await runner.provision(session.pk)
    await Reconciler(["fake"]).run_once()
    await runner.wait_idle()
    assert fake_engine.started == []  # the other worker is alive: nobody else starts it
    assert (await reload(session)).state == State.STARTING


async def test_a_lapsed_lease_is_taken_over_and_the_start_completes(alice, hello_lab, fake_engine):
    session = await requested(alice, hello_lab)
    await update(
        session,
        state=State.STARTING,
        lease_owner="dead-host:123:abc",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    await Reconciler(["fake"]).run_once()
    await runner.wait_idle()
    session = await reload(session)
    assert session.state == State.RUNNING and session.lease_owner == ""
    assert fake_engine.started == [session.sandbox_name]


async def test_a_start_taken_over_by_another_worker_leaves_that_workers_sandbox(
    alice, hello_lab, fake_engine, monkeypatch
):
    """A loaded worker's lease lapsed and another took the start over; when the first one's
    start then fails (or notices at its renewal), it must not remove the sandbox by name:
    the name is the other worker's now, and its student would lose the lab."""
    monkeypatch.setattr(runner, "RENEW_SECONDS", 0.05)
    fake_engine.start_gate = asyncio.Event()
    session = await requested(alice, hello_lab)
    runner.kick(session.pk, State.REQUESTED)
    await until(lambda: _started(fake_engine))
    await update(
        session, lease_owner="other-host:1:abc", lease_expires_at=timezone.now() + timedelta(60)
    )
    await until(lambda: _cancelled(fake_engine))
    await runner.wait_idle()
    assert fake_engine.stopped == []
    session = await reload(session)
    assert (session.state, session.lease_owner) == (State.STARTING, "other-host:1:abc")


async def test_the_reconciler_does_not_wait_for_a_slow_start(
    alice, bob, hello_lab, fake_engine, settings
):
    running = await requested(bob, hello_lab)
    await runner.provision(running.pk)
    await update(running, expires_at=timezone.now() - timedelta(seconds=1))
    fake_engine.start_gate = asyncio.Event()  # alice's start hangs, like a VM booting
    slow = await requested(alice, hello_lab)
    await update(slow, created_at=timezone.now() - timedelta(minutes=1))
    await Reconciler(["fake"]).run_once()
    # The pass is over while alice's start still runs, and bob's time limit was applied.
    assert (await reload(slow)).state == State.STARTING
    assert (await reload(running)).end_reason == EndReason.TIME_LIMIT
    fake_engine.start_gate.set()
    await runner.wait_idle()
    assert (await reload(slow)).state == State.RUNNING


async def test_an_engine_that_does_not_answer_ends_nothing(alice, hello_lab, fake_engine):
    session = await requested(alice, hello_lab)
    await runner.provision(session.pk)
    fake_engine.unreachable = True
    for _ in range(3):
        await Reconciler(["fake"]).run_once()
        await runner.wait_idle()
    assert (await reload(session)).state == State.RUNNING


async def test_a_sandbox_that_exited_by_itself_ends_the_session_with_the_reason(
    alice, hello_lab, fake_engine
):
    session = await requested(alice, hello_lab)
    await runner.provision(session.pk)
    fake_engine.set_listed(
        session.sandbox_name, status=SandboxStatus.EXITED, exit_detail="it ran out of memory"
    )
    await Reconciler(["fake"]).run_once()
    session = await reload(session)
    assert (session.state, session.end_reason) == (State.FAILED, EndReason.EXITED)
    assert (
        "it ran out of memory" in session.failure_message or "内存耗尽）" in session.failure_message
    )


async def test_a_sandbox_over_its_disk_limit_is_stopped_and_told_why(alice, hello_lab, fake_engine):
    session = await requested(alice, hello_lab)
    await runner.provision(session.pk)
    too_much = (hello_lab.disk_mib + 1) * 2**20
    fake_engine.set_listed(session.sandbox_name, disk_bytes=too_much)
    await Reconciler(["fake"]).run_once()
    await runner.wait_idle()
    session = await reload(session)
    assert (session.state, session.end_reason) == (State.STOPPED, EndReason.DISK)
    assert str(hello_lab.disk_mib) in session.failure_message
    assert session.sandbox_name in fake_engine.stopped


async def test_extend_stops_at_the_limit_however_often_it_is_pressed(
    alice, hello_lab, fake_engine, settings
):
    session = await requested(alice, hello_lab)
    await runner.provision(session.pk)
    session = await reload(session)
    outcomes = []
    for _ in range(settings.LABSITE_MAX_EXTENSIONS + 3):
        try:
            await database_sync_to_async(services.extend)(session)
            outcomes.append("ok")
        except services.LabError as exc:
            outcomes.append(exc.code)
    assert outcomes.count("ok") == settings.LABSITE_MAX_EXTENSIONS
    assert (await reload(session)).extensions == settings.LABSITE_MAX_EXTENSIONS


async def test_a_reset_keeps_the_deadline_and_the_extensions_used(
    alice, hello_lab, fake_engine, settings
):
    """A Reset is a clean sandbox, not more time: the clock and the extension count carry
    over to the new session, before and after its start (or a reset would sidestep the
    extension limit)."""
    session = await requested(alice, hello_lab)
    await runner.provision(session.pk)
    session = await reload(session)
    await database_sync_to_async(services.extend)(session)
    deadline = timezone.now() + timedelta(minutes=7)  # time has passed since the start
    await update(session, expires_at=deadline)
    session = await reload(session)

    new = await database_sync_to_async(services.reset)(session)
    assert new.pk != session.pk
    await update(new, backend="fake")
    await runner.provision(new.pk)
    new = await reload(new)
    assert new.state == State.RUNNING
    assert new.expires_at == deadline
    assert new.extensions == 1
    assert (await reload(session)).end_reason == EndReason.RESET


async def test_the_running_lab_limit_holds_for_many_labs(alice, course, fake_engine, settings):
    from apps.courses.models import Lab

    labs = await database_sync_to_async(list)(Lab.objects.filter(status="ready"))
    assert len(labs) > settings.LABSITE_MAX_ACTIVE_SESSIONS
    refused = 0
    for lab in labs:
        try:
            await requested(alice, lab)
        except services.LabError as exc:
            assert exc.code == "too_many_sessions"
            refused += 1
    live = await database_sync_to_async(
        LabSession.objects.filter(owner=alice, state__in=services.LIVE_STATES).count
    )()
    assert live == settings.LABSITE_MAX_ACTIVE_SESSIONS
    assert refused == len(labs) - live


async def test_a_sandbox_with_the_site_label_but_no_session_is_an_orphan(
    alice, hello_lab, fake_engine
):
    from provisioning.base import LABEL_SITE, Sandbox

    session = await requested(alice, hello_lab)
    await runner.provision(session.pk)
    stray = Sandbox(name="stray", engine_id="x", labels={LABEL_SITE: fake_engine.site},
                    status=SandboxStatus.RUNNING)  # fmt: skip
    fake_engine.boxes["stray"] = stray
    await Reconciler(["fake"]).run_once()
    await runner.wait_idle()
    assert "stray" in fake_engine.stopped
    assert session.sandbox_name not in fake_engine.stopped  # the student's own is kept
