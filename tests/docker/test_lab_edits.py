"""Editing a lab never breaks a session already running on the older version: the session
keeps the steps and checks it started with; the next session gets the new ones."""

from __future__ import annotations

import shutil

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.test import AsyncClient

from apps.courses.models import Lab
from tests.conftest import FIXTURE_CONTENT
from tests.docker.conftest import start_lab

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def editable_course(tmp_path, settings):
    content = tmp_path / "content"
    shutil.copytree(FIXTURE_CONTENT, content)
    settings.CONTENT_DIR = content
    call_command("load_content", dir=content, stdout=open("/dev/null", "w"))
    return content


def edit_and_reload(content, new_check: str) -> None:
    steps = content / "testcourse" / "01-basics" / "labs" / "hello" / "steps"
    (steps / "01-write.check").write_text(new_check)
    md = steps / "01-write.md"
    md.write_text(md.read_text().replace("# 写一个文件", "# 改过的步骤", 1))
    call_command("load_content", dir=content, stdout=open("/dev/null", "w"))


def client_of(user) -> AsyncClient:
    client = AsyncClient()
    client.force_login(user)
    return client


async def check(user, session) -> dict:
    client = await database_sync_to_async(client_of)(user)
    return (await client.post(f"/api/sessions/{session.pk}/steps/1/check/")).json()


async def test_a_running_session_keeps_its_checks_through_an_edit(
    alice, bob, editable_course, docker_client
):
    lab = await database_sync_to_async(Lab.objects.get)(slug="hello")
    running = await start_lab(alice, lab)
    container = docker_client.containers.get(running.sandbox_name)
    container.exec_run(["sh", "-c", "mkdir -p /root/answers && echo hi > /root/answers/hello"])

    # The author rewrites step 1's check so that nothing passes it any more.
    await database_sync_to_async(edit_and_reload)(editable_course, "echo 'the new check'; exit 1\n")

    kept = await check(alice, running)
    assert kept["passed"] is True, kept  # the check alice started with
    page = await (await database_sync_to_async(client_of)(alice)).get(
        "/courses/testcourse/basics/labs/hello/"
    )
    assert "写一个文件" in page.content.decode()  # and the steps she started with
    assert "改过的步骤" not in page.content.decode()

    lab = await database_sync_to_async(Lab.objects.get)(slug="hello")
    fresh = await start_lab(bob, lab)
    docker_client.containers.get(fresh.sandbox_name).exec_run(
        ["sh", "-c", "mkdir -p /root/answers && echo hi > /root/answers/hello"]
    )
    changed = await check(bob, fresh)
    assert changed["passed"] is False and "the new check" in changed["output"]
    page = await (await database_sync_to_async(client_of)(bob)).get(
        "/courses/testcourse/basics/labs/hello/"
    )
    assert "改过的步骤" in page.content.decode()
