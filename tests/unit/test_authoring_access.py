"""Who may edit what: admins everything, instructors the courses they own or were granted,
students and strangers nothing (anonymous users are sent to log in)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.authoring.models import CourseRole, CourseRoleKind
from tests.unit import test_authoring_fixtures as fx
from tests.unit.test_authoring_fixtures import LAB, editor_data, login, save

# The shared fixtures, by name.
content, owner, testcourse = fx.content, fx.owner, fx.testcourse

pytestmark = pytest.mark.django_db

LAB_URL = "/authoring/courses/testcourse/01-basics/labs/hello/"


def pages(lab_id: int) -> list[tuple[str, str, dict | None]]:
    """(method, url, JSON body) of every editor page and action on the test course."""
    return [
        ("get", "/authoring/courses/testcourse/", None),
        ("get", "/authoring/courses/testcourse/01-basics/", None),
        ("get", LAB_URL, None),
        ("get", reverse("authoring:revisions", args=["testcourse"]) + f"?path={LAB}", None),
        ("get", reverse("authoring:export", args=["testcourse"]), None),
        ("get", reverse("authoring:state", args=["testcourse"]) + f"?path={LAB}", None),
        ("post", reverse("authoring:save", args=["testcourse"]),
         {"path": LAB, "base_digest": "x", "files": {"lab.yaml": "x"}}),
        ("post", reverse("authoring:try", args=[lab_id]), {"number": 1, "script": "exit 0"}),
        ("post", reverse("authoring:validate", args=[lab_id]), {}),
    ]  # fmt: skip


def call(client, method: str, url: str, body: dict | None):
    if method == "get":
        return client.get(url)
    return client.post(url, json.dumps(body or {}), content_type="application/json")


@pytest.fixture
def hello(testcourse):
    return testcourse.modules.get(slug="basics").labs.get(slug="hello")


def test_anonymous_users_are_sent_to_log_in(client, hello):
    for method, url, body in pages(hello.pk):
        response = call(client, method, url, body)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url
    assert client.get(reverse("authoring:index")).status_code == 302


def test_students_get_403_even_with_a_role(client, alice, hello, testcourse):
    CourseRole.objects.create(course=testcourse, user=alice, role=CourseRoleKind.OWNER)
    login(client, alice)
    assert client.get(reverse("authoring:index")).status_code == 403
    for method, url, body in pages(hello.pk):
        assert call(client, method, url, body).status_code == 403, url


def test_an_instructor_without_a_role_gets_403(client, dave, hello, content):
    login(client, dave)
    index = client.get(reverse("authoring:index"))
    assert index.status_code == 200 and "testcourse" not in index.content.decode()
    for method, url, body in pages(hello.pk):
        assert call(client, method, url, body).status_code == 403, url
    lab_yaml = content / "testcourse" / LAB / "lab.yaml"
    assert "title_en" in lab_yaml.read_text()  # untouched


@pytest.mark.parametrize("who", ["owner", "editor", "admin"])
def test_owner_editor_and_admin_may_edit(client, who, owner, dave, erin, testcourse, content):
    user = {"owner": owner, "editor": dave, "admin": erin}[who]
    if who == "editor":
        CourseRole.objects.create(course=testcourse, user=dave, role=CourseRoleKind.EDITOR)
    login(client, user)
    assert "testcourse" in client.get(reverse("authoring:index")).content.decode()
    data = editor_data(client.get(LAB_URL))
    response = save(client, data, {"setup.sh": f"echo {who}\n"})
    assert response.status_code == 200, response.content
    assert (content / "testcourse" / LAB / "setup.sh").read_text() == f"echo {who}\n"


def test_an_owner_grants_and_removes_an_editor(client, owner, dave, testcourse):
    login(client, owner)
    response = client.post(reverse("authoring:grant", args=["testcourse"]), {"username": "dave"})
    assert response.status_code == 302
    role = CourseRole.objects.get(course=testcourse, user=dave)
    assert role.role == CourseRoleKind.EDITOR
    page = client.get(reverse("authoring:course", args=["testcourse"])).content.decode()
    assert "dave" in page

    client.post(reverse("authoring:revoke", args=["testcourse", role.pk]))
    assert not CourseRole.objects.filter(user=dave).exists()


def test_only_instructors_can_be_granted(client, owner, alice, testcourse):
    login(client, owner)
    client.post(reverse("authoring:grant", args=["testcourse"]), {"username": "alice"})
    assert not CourseRole.objects.filter(user=alice).exists()


def test_an_editor_may_not_grant(client, dave, erin, testcourse, owner):
    CourseRole.objects.create(course=testcourse, user=dave, role=CourseRoleKind.EDITOR)
    login(client, dave)
    page = client.get(reverse("authoring:course", args=["testcourse"])).content.decode()
    assert reverse("authoring:grant", args=["testcourse"]) not in page
    response = client.post(reverse("authoring:grant", args=["testcourse"]), {"username": "erin"})
    assert response.status_code == 403
    assert not CourseRole.objects.filter(user=erin).exists()


def test_course_roles_are_in_the_django_admin(client, erin, owner):
    login(client, erin)
    response = client.get(reverse("admin:authoring_courserole_changelist"))
    assert response.status_code == 200 and "carol" in response.content.decode()


def test_the_edit_link_tag_shows_only_to_those_who_may_edit(rf, alice, dave, owner, hello):
    from django.template import Context, Template

    template = Template("{% load authoring %}{% editor_url lab as url %}[{{ url }}]")
    for user, expected in ((alice, "[]"), (dave, "[]"), (owner, f"[{LAB_URL}]")):
        request = rf.get("/")
        request.user = user
        assert template.render(Context({"request": request, "lab": hello})) == expected
