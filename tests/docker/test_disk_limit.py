"""A student cannot fill the host's Docker storage: a lab's disk use is bounded."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from apps.sessions import runner
from apps.sessions.models import EndReason, LabSession, State
from apps.sessions.reconciler import Reconciler
from tests.docker.conftest import start_lab

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


async def test_a_student_writing_past_the_labs_disk_limit_is_stopped(
    alice, hello_lab, docker_client
):
    await database_sync_to_async(type(hello_lab).objects.filter(pk=hello_lab.pk).update)(
        disk_mib=32
    )
    hello_lab.disk_mib = 32
    session = await start_lab(alice, hello_lab)
    container = docker_client.containers.get(session.sandbox_name)
    result = container.exec_run(["sh", "-c", "dd if=/dev/zero of=/root/fill bs=1M count=48"])
    if result.exit_code != 0:
        # A storage driver with a hard quota refused the write itself: that is the limit too.
        assert b"No space left" in result.output or b"quota" in result.output.lower()
        return
    await Reconciler(["docker"]).run_once()
    await runner.wait_idle()
    session = await database_sync_to_async(LabSession.objects.get)(pk=session.pk)
    assert (session.state, session.end_reason) == (State.STOPPED, EndReason.DISK)
    assert "32" in session.failure_message
    names = [c.name for c in docker_client.containers.list(all=True)]
    assert session.sandbox_name not in names
