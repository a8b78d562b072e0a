"""Checks a student cannot forge or use to slow others down, on the real engine."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from apps.sessions import runner, sandbox
from tests.docker.conftest import Screen, connect_terminal, start_lab

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


async def client_for(user) -> AsyncClient:
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return client


def as_root(docker_client, name: str, script: str) -> tuple[int, str]:
    """What the student can do in their own terminal: they are root in the container."""
    result = docker_client.containers.get(name).exec_run(["bash", "-c", script])
    return result.exit_code, result.output.decode(errors="replace")


async def test_a_check_still_fails_after_the_student_replaces_sh_and_timeout(
    alice, hello_lab, docker_client
):
    session = await start_lab(alice, hello_lab)
    code, out = as_root(
        docker_client, session.sandbox_name,
        "for tool in /bin/sh /usr/bin/timeout /bin/cat /usr/bin/test /usr/bin/[; do "
        "cp /bin/true $tool || exit 1; done; sh -c 'exit 1' && timeout 1 false && echo forged",
    )  # fmt: skip
    assert code == 0 and "forged" in out  # the image's own tools now lie
    client = await client_for(alice)
    result = (await client.post(f"/api/sessions/{session.pk}/steps/1/check/")).json()
    assert result["passed"] is False and "/root/answers/hello" in result["output"]


async def test_the_platforms_tools_cannot_be_changed_from_inside(alice, hello_lab, docker_client):
    session = await start_lab(alice, hello_lab)
    for attempt in (
        "echo x > /.labsite/bin/sh",
        "rm /.labsite/bin/timeout",
        "umount /.labsite",
        "mount -o remount,rw /.labsite",
        "mv /.labsite /tmp/elsewhere",
    ):
        code, _out = as_root(docker_client, session.sandbox_name, attempt)
        assert code != 0, attempt
    code, out = as_root(docker_client, session.sandbox_name, "/.labsite/bin/sh -c 'echo ok'")
    assert (code, out.strip()) == (0, "ok")


async def test_the_deadline_is_the_servers_even_if_the_student_freezes_the_timer(
    alice, hello_lab, docker_client, settings
):
    settings.LABSITE_CHECK_TIMEOUT = 1
    session = await start_lab(alice, hello_lab)
    # The student stops every `timeout` process the moment it appears, so the sandbox's
    # own deadline never fires.
    docker_client.containers.get(session.sandbox_name).exec_run(
        ["bash", "-c", "while true; do pkill -STOP -x timeout; sleep 0.05; done"], detach=True
    )
    client = await client_for(alice)
    result = (await client.post(f"/api/sessions/{session.pk}/steps/2/check/")).json()
    assert result["passed"] is False and result["timed_out"] is True
    # What was left of it is killed: no check process survives.
    _code, out = as_root(docker_client, session.sandbox_name, "ps -eo stat,args")
    assert "labcheck-" not in out, out


async def test_one_check_at_a_time_per_session_and_others_are_not_slowed(
    alice, bob, hello_lab, course, docker_client, settings
):
    settings.LABSITE_CHECK_TIMEOUT = 20
    alices = await start_lab(alice, hello_lab)
    client = await client_for(alice)
    # Alice fires thirty checks that would each run to the timeout (step 2 sleeps).
    url = f"/api/sessions/{alices.pk}/steps/2/check/"
    checks = [asyncio.ensure_future(client.post(url)) for _ in range(30)]
    await asyncio.sleep(1)
    # Meanwhile bob starts his own lab and types into it: it answers while alice's check
    # still runs.
    bobs = await start_lab(bob, hello_lab)
    screen = Screen(await connect_terminal(bobs, bob))
    await screen.until(b"# ")
    await screen.type("echo still-$((40+2))\r")
    await screen.until(b"still-42")
    assert not all(c.done() for c in checks)
    await screen.communicator.disconnect()
    responses = await asyncio.gather(*checks)
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1  # one ran to its timeout...
    assert statuses.count(429) == 29  # ...the others were told to wait, or to slow down
    codes = [r.json()["error"]["code"] for r in responses if r.status_code == 429]
    assert set(codes) == {"check_busy", "check_rate"}
    assert codes.count("check_rate") == 30 - sandbox.CHECKS_PER_WINDOW


async def test_a_step_that_counts_tries_refuses_once_they_are_used_even_in_a_new_session(
    alice, hello_lab, docker_client
):
    """A quiz (``<!-- attempts: N -->``) cannot be answered by changing one answer at a
    time until its check passes: failed checks are counted per student, across sessions."""
    await sync_to_async(hello_lab.steps.filter(number=1).update)(attempts=2)
    lab_page = await sync_to_async(hello_lab.get_absolute_url)()
    client = await client_for(alice)
    session = await start_lab(alice, hello_lab)
    first = (await client.post(f"/api/sessions/{session.pk}/steps/1/check/")).json()
    assert (first["passed"], first["attempts_left"]) == (False, 1)
    page = await client.get(lab_page)
    assert 'data-role="tries-left" data-left="1"' in page.content.decode()

    # A fresh sandbox does not buy new tries.
    assert (await client.post(f"/api/sessions/{session.pk}/stop/")).status_code == 200
    await runner.wait_idle()
    session = await start_lab(alice, hello_lab)
    second = (await client.post(f"/api/sessions/{session.pk}/steps/1/check/")).json()
    assert (second["passed"], second["attempts_left"]) == (False, 0)

    as_root(
        docker_client, session.sandbox_name, "mkdir -p /root/answers; echo hi >/root/answers/hello"
    )
    refused = await client.post(f"/api/sessions/{session.pk}/steps/1/check/")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "no_attempts"

    # The instructor gives the tries back (the admin deletes the count): the right answer passes.
    await sync_to_async(alice.step_attempts.all().delete)()
    passed = (await client.post(f"/api/sessions/{session.pk}/steps/1/check/")).json()
    assert passed["passed"] is True and passed["attempts_left"] is None
    page = await client.get(lab_page)
    assert 'data-role="tries-left"' not in page.content.decode()
