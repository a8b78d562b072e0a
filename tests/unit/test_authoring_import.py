"""Import a lab or a whole course from a zip (or a folder, which the browser zips) and
export it back: the export of an import is the same files, byte for byte. Anything unsafe
in an upload is refused before a byte reaches CONTENT_DIR."""

from __future__ import annotations

import io
import json
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse

from apps.authoring import archive
from apps.authoring.models import CourseRole, CourseRoleKind, Revision
from apps.courses.models import Course, Lab
from tests.conftest import FIXTURE_CONTENT
from tests.unit import test_authoring_fixtures as fx
from tests.unit.test_authoring_fixtures import login

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


FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"  # not UTF-8: kept as bytes


def folder_files(folder: Path, top: str) -> dict[str, bytes]:
    return {
        f"{top}/{p.relative_to(folder).as_posix()}": p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def make_zip(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return buffer.getvalue()


def upload(client, data: bytes, name: str = "upload.zip", module=None):
    form = {"archive": _named(data, name)}
    if module is not None:
        form["module"] = module.pk
    return client.post(reverse("authoring:import"), form)


def _named(data: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/zip")


def messages_of(client) -> str:
    return client.get(reverse("authoring:index")).content.decode()


def exported(client, slug: str, path: str = "") -> dict[str, bytes]:
    response = client.get(reverse("authoring:export", args=[slug]), {"path": path})
    assert response.status_code == 200
    z = zipfile.ZipFile(io.BytesIO(response.content))
    return {name: z.read(name) for name in z.namelist()}


def a_lab(title: str = "导入的实验") -> dict[str, bytes]:
    return {
        "imported/lab.yaml": (
            f"title: {title}\ntitle_en: Imported\nstatus: ready\n"
            "environment:\n  kind: container\n  image: labsite/base\n"
        ).encode(),
        "imported/steps/01-one.md": "# 第一步\n<!-- title_en: One -->\n\n做。\r\n".encode(),
        "imported/steps/01-one.check": b"#!/bin/sh\nexit 0\n",
        "imported/diagram.png": PNG,
    }


def test_a_lab_zip_imported_into_a_module_and_exported_back_byte_for_byte(
    client, content, owner, testcourse
):
    login(client, owner)
    module = testcourse.modules.get(slug="more")
    files = a_lab()
    response = upload(client, make_zip(files), module=module)
    assert response.status_code == 302
    assert response["Location"].endswith("/authoring/courses/testcourse/02-more/labs/imported/")
    lab = Lab.objects.get(slug="imported")
    assert lab.module == module and lab.steps.get().title == "第一步"
    assert Revision.objects.filter(path="02-more/labs/imported", author=owner).exists()
    assert exported(client, "testcourse", "02-more/labs/imported") == files


def test_a_new_course_imported_makes_its_importer_owner_and_exports_the_same_bytes(
    client, content, dave
):
    login(client, dave)
    source = FIXTURE_CONTENT / "testcourse"
    files = folder_files(source, "othercourse")
    files["othercourse/01-basics/diagrams/photo.png"] = PNG
    response = upload(client, make_zip(files))
    assert response.status_code == 302, messages_of(client)
    course = Course.objects.get(slug="othercourse")
    assert CourseRole.objects.get(course=course, user=dave).role == CourseRoleKind.OWNER
    assert course.modules.count() == 2
    assert exported(client, "othercourse") == files
    assert (content / "othercourse" / "01-basics/diagrams/photo.png").read_bytes() == PNG


def test_reimporting_a_course_replaces_it_and_keeps_history(client, content, owner):
    login(client, owner)
    files = folder_files(content / "testcourse", "testcourse")
    files["testcourse/course.yaml"] = files["testcourse/course.yaml"].replace(
        "测试课程".encode(), "改名的课程".encode()
    )
    removed = [name for name in files if "/labs/later/" in name]
    for name in removed:
        del files[name]
    response = upload(client, make_zip(files))
    assert response.status_code == 302
    assert Course.objects.get(slug="testcourse").title == "改名的课程"
    assert not (content / "testcourse/02-more/labs/later").exists()
    assert not Lab.objects.filter(slug="later").exists()
    assert exported(client, "testcourse") == files
    gone = Revision.objects.filter(path="02-more/labs/later").order_by("-pk")
    assert gone.first().files == {} and gone[1].files  # the way back to the removed lab


def test_reimporting_a_course_one_may_not_edit_is_refused(client, content, testcourse, dave):
    login(client, dave)
    before = (content / "testcourse/course.yaml").read_bytes()
    files = folder_files(FIXTURE_CONTENT / "testcourse", "testcourse")
    files["testcourse/course.yaml"] = b"title: hijacked\ntitle_en: hijacked\n"
    upload(client, make_zip(files))
    assert (content / "testcourse/course.yaml").read_bytes() == before
    assert "may not edit" in messages_of(client)


@pytest.mark.parametrize(
    "files,symlinks,why",
    [
        ({"imported/../../../evil.md": b"x"}, None, b".."),
        ({"../imported/lab.yaml": b"x"}, None, b".."),
        ({"/etc/imported/lab.yaml": b"x"}, None, b"not a relative path"),
        ({}, {"imported/steps/01-one.solve": "/etc/shadow"}, b"symbolic links"),
        ({"imported/steps/01-two.md": b"\xff\xfe# bad"}, None, b"not UTF-8"),
    ],
)
def test_unsafe_uploads_are_refused_before_anything_is_written(
    client, content, owner, testcourse, files, symlinks, why
):
    login(client, owner)
    before = folder_files(content, "")
    response = upload(
        client, make_zip(a_lab() | files, symlinks), module=testcourse.modules.get(slug="more")
    )
    assert response.status_code == 302
    assert why in messages_of(client).encode().replace(b"&#x27;", b"'")
    assert folder_files(content, "") == before
    assert not Lab.objects.filter(slug="imported").exists()
    assert not (Path(content).parent / "evil.md").exists()


def test_an_upload_the_loader_refuses_is_not_written(client, content, owner, testcourse):
    login(client, owner)
    files = a_lab()
    files["imported/lab.yaml"] = b"title: x\nstatus: ready\n"
    before = folder_files(content, "")
    upload(client, make_zip(files), module=testcourse.modules.get(slug="more"))
    page = messages_of(client)
    assert "testcourse/02-more/labs/imported/lab.yaml" in page
    assert folder_files(content, "") == before


def test_too_many_or_too_large_files_are_refused(monkeypatch):
    monkeypatch.setattr(archive, "MAX_FILES", 3)
    with pytest.raises(archive.Refused, match="More than 3 files"):
        archive.read_zip(make_zip(a_lab() | {"imported/x.txt": b"x"}), "x")
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 10)
    with pytest.raises(archive.Refused, match="larger than"):
        archive.read_zip(make_zip({"imported/lab.yaml": b"x" * 11}), "x")


def test_a_zip_without_a_course_or_lab_is_refused():
    with pytest.raises(archive.Refused, match=r"Neither course\.yaml nor lab\.yaml"):
        archive.read_zip(make_zip({"stuff/readme.txt": b"hi"}), "x")
    with pytest.raises(archive.Refused, match="not a zip"):
        archive.read_zip(b"plain text", "x")


def test_two_exports_of_the_same_files_are_the_same_bytes(client, content, owner):
    login(client, owner)
    first = client.get(reverse("authoring:export", args=["testcourse"])).content
    second = client.get(reverse("authoring:export", args=["testcourse"])).content
    assert first == second


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_a_folder_zipped_by_the_browser_code_imports_exactly(client, content, owner, testcourse):
    """The folder upload: frontend/src/editor/zip.js packs the files, the server imports."""
    files = a_lab()
    script = (
        "import('./src/editor/zip.js').then(({makeZip}) => {"
        "const files = JSON.parse(process.argv[1]);"
        "const entries = Object.entries(files).map(([name, b64]) =>"
        " ({name, bytes: new Uint8Array(Buffer.from(b64, 'base64'))}));"
        "process.stdout.write(Buffer.from(makeZip(entries)));})"
    )
    import base64

    payload = json.dumps({k: base64.b64encode(v).decode() for k, v in files.items()})
    zipped = subprocess.run(
        ["node", "-e", script, payload], cwd=FRONTEND, capture_output=True, check=True
    ).stdout
    login(client, owner)
    upload(client, zipped, module=testcourse.modules.get(slug="more"))
    assert exported(client, "testcourse", "02-more/labs/imported") == files
