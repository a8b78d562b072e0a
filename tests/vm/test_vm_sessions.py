"""A VM lab through the whole site: Start, the terminal over the real ASGI app, a check,
Stop, and the reconciler; against the real libvirtd and QEMU."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from apps.sessions import runner
from apps.sessions.engines import get_backend
from apps.sessions.models import EndReason, LabSession, State
from apps.sessions.reconciler import Reconciler
from apps.terminals import protocol
from tests.docker.conftest import Screen, connect_terminal, start_lab

pytestmark = [
    pytest.mark.libvirt,
    pytest.mark.django_db(transaction=True),
    # libvirt's event loop integration is one per process: every test here shares one loop.
    pytest.mark.asyncio(loop_scope="session"),
]


@pytest.fixture
async def vm_lab(course, libvirtd, tiny_template):
    from apps.courses.models import Lab

    return await database_sync_to_async(Lab.objects.select_related("module").get)(slug="tiny-vm")


@pytest.fixture(autouse=True)
async def no_guests_left(settings):
    yield
    await runner.wait_idle()
    backend = get_backend("libvirt")
    for sandbox in await backend.list_sandboxes():
        await backend.stop(sandbox)


async def test_vm_lab_terminal_check_and_stop(alice, bob, vm_lab):
    session = await start_lab(alice, vm_lab)
    screen = Screen(await connect_terminal(session, alice))
    await screen.type("\r")
    await screen.type("echo vm-$((6*7))\r")
    await screen.until(b"vm-42", timeout=30)

    backend = get_backend("libvirt")
    from apps.sessions.specs import sandbox_of

    sandbox = await database_sync_to_async(sandbox_of)(session)
    step = await database_sync_to_async(vm_lab.steps.get)(number=1)
    before = await backend.run_check(sandbox, step.check_script, timeout=10)
    assert not before.passed and "还没有记号" in before.output
    await screen.type("mkdir -p /root/answers && echo vm > /root/answers/mark\r")
    await screen.type("echo done-$((1+1))\r")
    await screen.until(b"done-2", timeout=30)
    after = await backend.run_check(sandbox, step.check_script, timeout=10)
    assert after.passed, after.output
    await screen.communicator.disconnect()

    # Reconnect: the same console, with what was printed before replayed.
    again = Screen(await connect_terminal(session, alice))
    await again.until(b"done-2", timeout=30)
    await again.communicator.disconnect()

    # Another student cannot attach.
    from tests.docker.conftest import close_code

    assert await close_code(await connect_terminal(session, bob)) == 4003

    from apps.sessions import services
    from apps.sessions.models import EndReason

    await database_sync_to_async(services.request_stop)(session, EndReason.USER)
    await runner.teardown(session.pk)
    assert (await database_sync_to_async(LabSession.objects.get)(pk=session.pk)).state == (
        State.STOPPED
    )
    assert await backend.list_sandboxes() == []


async def test_reconciler_adopts_running_guest_and_destroys_orphan(alice, vm_lab):
    from apps.sessions.engines import close_backends

    session = await start_lab(alice, vm_lab)
    await close_backends()  # the "restart": a new process knows nothing but the database
    await Reconciler(["libvirt"]).run_once()
    await runner.wait_idle()
    assert (await database_sync_to_async(LabSession.objects.get)(pk=session.pk)).state == (
        State.RUNNING
    )
    screen = Screen(await connect_terminal(session, alice))  # the adopted guest still answers
    await screen.type("echo adopted-$((2*21))\r")
    await screen.until(b"adopted-42", timeout=30)
    await screen.communicator.disconnect()

    backend = get_backend("libvirt")
    assert [s.session_id for s in await backend.list_sandboxes()] == [str(session.pk)]
    await database_sync_to_async(LabSession.objects.filter(pk=session.pk).delete)()
    await Reconciler(["libvirt"]).run_once()
    await runner.wait_idle()
    assert await backend.list_sandboxes() == []  # the guest nobody knows was destroyed


async def test_admins_see_whether_guests_run_under_kvm_or_tcg(erin, libvirtd, tiny_template):
    from apps.hosts.models import Host, Pool

    pool, _ = await database_sync_to_async(Pool.objects.get_or_create)(name="default")
    await database_sync_to_async(Host.objects.get_or_create)(
        name="local-libvirt", defaults={"pool": pool, "engine": "libvirt", "backend": "libvirt"}
    )
    await Reconciler(["libvirt"]).run_once()
    await runner.wait_idle()
    host = await database_sync_to_async(Host.objects.get)(backend="libvirt")
    assert host.facts["virt_type"] in ("kvm", "qemu")
    assert host.facts["virt_evidence"]  # decided by trying, with the evidence kept


async def test_poweroff_in_the_guest_ends_the_session_and_closes_the_terminal(alice, vm_lab):
    from tests.docker.conftest import close_code

    session = await start_lab(alice, vm_lab)
    screen = Screen(await connect_terminal(session, alice))
    await screen.type("\r")
    await screen.type("echo up-$((6*7))\r")
    await screen.until(b"up-42", timeout=30)
    await screen.type("poweroff -f\r")
    # The console ends with the guest: the page hears "sandbox ended", not a reconnect cue.
    assert await close_code(screen.communicator, timeout=60) == protocol.SANDBOX_ENDED
    await Reconciler(["libvirt"]).run_once()
    await runner.wait_idle()
    session = await database_sync_to_async(LabSession.objects.get)(pk=session.pk)
    assert (session.state, session.end_reason) == (State.FAILED, EndReason.EXITED)
    assert "poweroff" in session.failure_message or "关机" in session.failure_message
