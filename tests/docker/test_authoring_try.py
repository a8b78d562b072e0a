"""*Try it* in the lab editor, on the real engine: the page's unsaved check text runs in the
author's own running sandbox of the lab; nothing is recorded as passed; without a session
the page is told how to start one."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from apps.authoring.models import CourseRole, CourseRoleKind
from apps.courses.models import StepProgress
from tests.docker.conftest import start_lab

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


async def editor_of(user, lab) -> AsyncClient:
    course = await sync_to_async(lambda: lab.module.course)()
    await CourseRole.objects.acreate(course=course, user=user, role=CourseRoleKind.OWNER)
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return client


async def try_it(client, lab, script: str, number: int = 1):
    return await client.post(
        f"/authoring/labs/{lab.pk}/try/",
        json.dumps({"number": number, "script": script}),
        content_type="application/json",
    )


async def test_try_it_runs_the_draft_check_in_the_authors_own_sandbox(
    carol, hello_lab, docker_client
):
    client = await editor_of(carol, hello_lab)

    missing = await try_it(client, hello_lab, "exit 0")
    assert missing.status_code == 409
    body = missing.json()
    assert body["code"] == "no_session"
    assert body["start_url"] == f"/api/labs/{hello_lab.pk}/sessions/"
    assert body["lab_url"] == hello_lab.get_absolute_url()

    session = await start_lab(carol, hello_lab)
    draft = "test -f /root/answers/draft && echo 找到了 || { echo 没有; exit 1; }"
    failed = (await try_it(client, hello_lab, draft)).json()
    assert failed["passed"] is False and "没有" in failed["output"]

    docker_client.containers.get(session.sandbox_name).exec_run(
        ["sh", "-c", "mkdir -p /root/answers && touch /root/answers/draft"]
    )
    passed = (await try_it(client, hello_lab, draft)).json()
    assert passed["passed"] is True and "找到了" in passed["output"]
    # A draft check proves nothing about the student's work: no progress is recorded.
    assert not await StepProgress.objects.filter(user=carol).aexists()


async def test_try_it_never_uses_someone_elses_sandbox(alice, carol, hello_lab, docker_client):
    await start_lab(alice, hello_lab)
    client = await editor_of(carol, hello_lab)
    response = await try_it(client, hello_lab, "exit 0")
    assert response.status_code == 409 and response.json()["code"] == "no_session"
