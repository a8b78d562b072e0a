"""Shared fixtures of the lab editor's tests (imported by the test_authoring_* modules).

- ``content``: a copy of tests/fixtures/content as CONTENT_DIR, loaded: the editor writes
  there, never into the repository's content/.
- carol owns the test course; dave is an instructor with no role on it (until a test
  grants him one); alice is a student; erin an administrator.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.authoring.models import CourseRole, CourseRoleKind
from tests.conftest import FIXTURE_CONTENT, PASSWORD

LAB = "01-basics/labs/hello"


@pytest.fixture
def content(tmp_path, settings, db) -> Path:
    root = tmp_path / "content"
    shutil.copytree(FIXTURE_CONTENT, root)
    settings.CONTENT_DIR = root
    settings.VAR_DIR = tmp_path / "var"
    call_command("load_content", dir=root, stdout=open("/dev/null", "w"))
    return root


@pytest.fixture
def testcourse(content):
    from apps.courses.models import Course

    return Course.objects.get(slug="testcourse")


@pytest.fixture
def owner(carol, testcourse):
    CourseRole.objects.create(course=testcourse, user=carol, role=CourseRoleKind.OWNER)
    return carol


def login(client, user) -> None:
    assert client.login(username=user.username, password=PASSWORD)


def editor_data(response) -> dict:
    """The JSON the editor page hands its script (files, digest, urls)."""
    html = response.content.decode()
    start = html.index('id="editor-data"')
    start = html.index(">", start) + 1
    return json.loads(html[start : html.index("</script>", start)])


def save(client, data: dict, files: dict, base: str | None = None, message: str = ""):
    return client.post(
        data["urls"]["save"],
        json.dumps(
            {
                "path": data["path"],
                "base_digest": data["digest"] if base is None else base,
                "files": files,
                "message": message,
            }
        ),
        content_type="application/json",
    )
