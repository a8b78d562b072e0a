"""Editing a lab in the browser: the files on disk are what is saved, the database follows
them, every save is a revision, nothing typed or written on disk is lost."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.urls import reverse

from apps.authoring.models import Revision, RevisionSource
from apps.courses.models import Lab, Step
from tests.unit import test_authoring_fixtures as fx
from tests.unit.test_authoring_fixtures import LAB, editor_data, login, save

# The shared fixtures, by name.
content, owner, testcourse = fx.content, fx.owner, fx.testcourse

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def in_english(settings):
    """These tests read the English messages; the site's default language is Chinese."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


LAB_URL = "/authoring/courses/testcourse/01-basics/labs/hello/"
STEP_MD = "steps/01-write.md"


def open_lab(client):
    response = client.get(LAB_URL)
    assert response.status_code == 200
    return editor_data(response)


def test_edit_preview_save_changes_disk_and_database_and_export_equals_files(
    client, content, owner
):
    login(client, owner)
    data = open_lab(client)
    assert data["files"][STEP_MD].startswith("# 写一个文件")

    new_md = (
        "# 写两个文件\n<!-- title_en: Write two files -->\n\n先写 **第一个**。\n\n"
        "```bash\necho hi > /root/answers/hello\n```\n"
    )
    preview = client.post(
        reverse("authoring:preview"),
        json.dumps({"kind": "step", "text": new_md}),
        content_type="application/json",
    ).json()
    assert preview["title"] == "写两个文件"
    assert "<strong>第一个</strong>" in preview["html"]
    assert 'class="language-bash"' in preview["html"]  # the student page's run-in-terminal hook

    new_check = "#!/bin/sh\ntest -f /root/answers/two\n"
    response = save(
        client, data, {STEP_MD: new_md, "steps/01-write.check": new_check}, message="two"
    )
    assert response.status_code == 200, response.content
    assert response.json()["revision"]

    lab_dir = content / "testcourse" / LAB
    assert (lab_dir / STEP_MD).read_text() == new_md
    assert (lab_dir / "steps/01-write.check").read_text() == new_check
    step = Step.objects.get(lab__slug="hello", number=1)
    assert step.title == "写两个文件"
    assert step.check_script == new_check
    assert step.body_html == preview["html"]  # the preview is what students get

    revision = Revision.objects.filter(path=LAB, source=RevisionSource.EDITOR).get()
    assert revision.author == owner and revision.message == "two"
    assert revision.files[STEP_MD] == new_md

    exported = client.get(reverse("authoring:export", args=["testcourse"]), {"path": LAB})
    archive = zipfile.ZipFile(io.BytesIO(exported.content))
    on_disk = {
        f"hello/{p.relative_to(lab_dir).as_posix()}": p.read_bytes()
        for p in lab_dir.rglob("*")
        if p.is_file()
    }
    assert {name: archive.read(name) for name in archive.namelist()} == on_disk
    assert archive.namelist() == sorted(on_disk)


def test_adding_and_removing_a_step(client, content, owner):
    login(client, owner)
    data = open_lab(client)
    response = save(
        client,
        data,
        {"steps/03-third.md": "# 第三步\n<!-- title_en: Third -->\n\n做点什么。\n",
         "steps/03-third.check": "exit 0\n", "steps/02-slow.md": None,
         "steps/02-slow.check": None},
    )  # fmt: skip
    assert response.status_code == 200, response.content
    steps = content / "testcourse" / LAB / "steps"
    assert not (steps / "02-slow.md").exists() and (steps / "03-third.md").exists()
    lab = Lab.objects.get(slug="hello")
    assert [s.slug for s in lab.steps.all()] == ["write", "third"]


def test_a_change_on_disk_shows_in_the_editor_as_an_on_disk_revision(client, content, owner):
    login(client, owner)
    data = open_lab(client)
    first = Revision.objects.get(path=LAB)  # the first look records what was there
    assert first.source == RevisionSource.DISK

    solve = content / "testcourse" / LAB / "steps/01-write.solve"
    solve.write_text("echo edited in vim\n")
    state = client.get(data["urls"]["state"]).json()
    assert state["digest"] != data["digest"]  # the open page notices

    again = open_lab(client)
    assert again["files"]["steps/01-write.solve"] == "echo edited in vim\n"
    latest = Revision.objects.filter(path=LAB).order_by("-pk").first()
    assert latest.source == RevisionSource.DISK and latest.author is None
    assert latest.files["steps/01-write.solve"] == "echo edited in vim\n"
    page = client.get(data["urls"]["revisions"]).content.decode()
    assert "on disk" in page or "磁盘" in page
    assert "+echo edited in vim" in page


def test_a_conflicting_save_is_refused_and_the_disk_kept(client, content, owner):
    login(client, owner)
    data = open_lab(client)
    solve = content / "testcourse" / LAB / "steps/01-write.solve"
    solve.write_text("echo someone else\n")

    response = save(client, data, {"steps/01-write.solve": "echo mine\n"})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict" and "changed on disk" in body["error"]
    assert solve.read_text() == "echo someone else\n"
    # The other edit is in the history before anything else happens.
    assert (
        Revision.objects.filter(path=LAB).order_by("-pk").first().files["steps/01-write.solve"]
        == "echo someone else\n"
    )

    # "Overwrite with my text": the page sends the disk's digest as its base.
    response = save(client, data, {"steps/01-write.solve": "echo mine\n"}, base=body["disk_digest"])
    assert response.status_code == 200
    assert solve.read_text() == "echo mine\n"


@pytest.mark.parametrize(
    "files,message",
    [
        ({"lab.yaml": "title: [unclosed\n"}, "lab.yaml:2: invalid YAML"),
        ({"lab.yaml": "status: ready\nenvironment: {kind: container, image: x}\n"},
         "lab.yaml:1: 'title' is required"),
        ({STEP_MD: "# 标题\n正文\n"}, "01-write.md:2: the second line must be"),
        ({STEP_MD: "no title line\n"}, "01-write.md:1: the first line must be the step's title"),
    ],
)  # fmt: skip
def test_a_save_the_loader_refuses_changes_nothing(client, content, owner, files, message):
    login(client, owner)
    data = open_lab(client)
    lab_dir = content / "testcourse" / LAB
    before = {p: p.read_bytes() for p in lab_dir.rglob("*") if p.is_file()}
    title = Lab.objects.get(slug="hello").title

    response = save(client, data, files)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error
    assert f"testcourse/{LAB}/" in error  # named inside the course, never a temporary copy
    assert {p: p.read_bytes() for p in lab_dir.rglob("*") if p.is_file()} == before
    assert Lab.objects.get(slug="hello").title == title
    assert not Revision.objects.filter(source=RevisionSource.EDITOR).exists()


def test_a_revision_restored_writes_its_files_back_as_a_new_revision(client, content, owner):
    login(client, owner)
    data = open_lab(client)
    original = data["files"][STEP_MD]
    first = save(client, data, {STEP_MD: "# 改过的标题\n<!-- title_en: Changed -->\n\n正文\n"})
    assert first.status_code == 200
    assert Step.objects.get(lab__slug="hello", number=1).title == "改过的标题"

    oldest = Revision.objects.filter(path=LAB).order_by("pk").first()
    response = client.post(reverse("authoring:restore", args=[oldest.pk]))
    assert response.status_code == 302
    path = content / "testcourse" / LAB / STEP_MD
    assert path.read_text() == original
    assert Step.objects.get(lab__slug="hello", number=1).title == "写一个文件"
    newest = Revision.objects.filter(path=LAB).order_by("-pk").first()
    assert newest.source == RevisionSource.RESTORE and newest.files == oldest.files
    assert Revision.objects.filter(path=LAB).count() == 3


def test_paths_outside_the_unit_are_refused(client, content, owner):
    login(client, owner)
    data = open_lab(client)
    before = {p: p.read_bytes() for p in content.parent.rglob("*") if p.is_file()}
    for bad in ("../../02-more/lesson.md", "/etc/passwd", "steps/../../x.md", "labs/x/lab.yaml"):
        response = save(client, data, {bad: "x"})
        assert response.status_code == 400, bad
    after = {p: p.read_bytes() for p in content.parent.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if "var" not in p.parts} == {
        p: b for p, b in before.items() if "var" not in p.parts
    }


def test_module_lesson_preview_matches_the_module_page(client, content, owner):
    login(client, owner)
    response = client.get("/authoring/courses/testcourse/01-basics/")
    data = editor_data(response)
    lesson = data["files"]["lesson.md"]
    html = client.post(
        reverse("authoring:preview"),
        json.dumps({"kind": "lesson", "text": lesson, "course": "testcourse",
                    "module_dir": "01-basics"}),
        content_type="application/json",
    ).json()["html"]  # fmt: skip
    from apps.courses.models import Module

    assert html == Module.objects.get(slug="basics").body_html
    assert "<script>" not in html and "/assets/testcourse/01-basics/diagrams/layers.svg" in html


def test_new_lab_and_new_module(client, content, owner):
    login(client, owner)
    response = client.post(
        reverse("authoring:create", args=["testcourse"]),
        {"module_dir": "01-basics", "slug": "fresh", "title": "新实验", "title_en": "New lab"},
    )
    assert response.status_code == 302
    assert response["Location"].endswith("/01-basics/labs/fresh/")
    assert Lab.objects.get(slug="fresh").title == "新实验"
    response = client.post(
        reverse("authoring:create", args=["testcourse"]),
        {"slug": "extra", "title": "附加", "title_en": "Extra"},
    )
    assert response.status_code == 302
    assert (content / "testcourse" / "03-extra" / "module.yaml").is_file()
    assert client.get(response["Location"]).status_code == 200
