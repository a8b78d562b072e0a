"""Pages render for every role in both languages; staff pages are closed to students."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def pages(course):
    module = course.modules.get(slug="basics")
    lab = module.labs.get(slug="hello")
    return [
        course.get_absolute_url(),
        module.get_absolute_url(),
        lab.get_absolute_url(),
    ]


@pytest.mark.parametrize(
    "language,expected,title",
    [("zh-hans", "开始实验", "写一个文件"), ("en", "Start lab", "Write a file")],
)
@pytest.mark.parametrize("who", ["anonymous", "alice", "carol", "erin"])
def test_course_pages_render_for_each_role_and_language(
    client, course, alice, carol, erin, who, language, expected, title
):
    if who != "anonymous":
        client.login(username=who, password=PASSWORD)
    client.cookies["django_language"] = language
    for url in pages(course):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Language"] == language
    lab_page = client.get(pages(course)[2]).content.decode()
    assert expected in lab_page
    assert title in lab_page  # titles in the reader's language


def test_home_goes_to_the_only_course(client, course):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == course.get_absolute_url()


def test_module_page_lists_ready_and_planned_labs(client, course):
    html = client.get(course.modules.get(slug="more").get_absolute_url()).content.decode()
    assert "以后再做" in html
    assert "学生将在虚拟机里查看内核" in html  # the plan of a planned lab is shown


def test_language_switch_sets_english(client, course):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    html = client.get(course.get_absolute_url()).content.decode()
    assert "Test course" in html and "Log in" in html


STAFF_PAGES = ["teaching:classes", "teaching:create"]


@pytest.mark.parametrize("name", STAFF_PAGES)
def test_student_cannot_reach_instructor_pages(client, alice, name):
    client.login(username="alice", password=PASSWORD)
    assert client.get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", STAFF_PAGES)
def test_anonymous_is_sent_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_student_cannot_open_django_admin(client, alice):
    client.login(username="alice", password=PASSWORD)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_can_open_django_admin(client, erin):
    client.login(username="erin", password=PASSWORD)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/hosts/host/").status_code == 200
    assert client.get("/admin/labsessions/labsession/").status_code == 200


def test_instructor_sees_own_class_not_others(client, carol, dave):
    client.login(username="dave", password=PASSWORD)
    from apps.teaching.models import Classroom

    carols = Classroom.objects.get(name="Carol's class")
    assert client.get(reverse("teaching:class", args=[carols.pk])).status_code == 403
    client.login(username="carol", password=PASSWORD)
    page = client.get(reverse("teaching:class", args=[carols.pk]))
    assert page.status_code == 200 and "alice" in page.content.decode()


def test_login_page_works(client, alice):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("accounts:profile")).status_code == 200


def test_diagram_is_served_and_path_escape_refused(client, course):
    ok = client.get("/assets/testcourse/01-basics/diagrams/layers.svg")
    assert ok.status_code == 200 and ok["Content-Type"] == "image/svg+xml"
    assert "default-src 'none'" in ok["Content-Security-Policy"]
    assert client.get("/assets/testcourse/01-basics/diagrams/..%2Flesson.md").status_code == 404
    assert client.get("/assets/testcourse/01-basics/diagrams/nope.svg").status_code == 404


def test_browser_strings_are_translated(client):
    connecting = json.dumps("正在连接")[1:-1]  # the catalog is served with \\u escapes
    assert connecting in client.get("/jsi18n/").content.decode()
    client.cookies["django_language"] = "en"
    assert connecting not in client.get("/jsi18n/").content.decode()


def test_the_browsers_language_is_used_until_the_user_picks_one(client, course):
    """(Issue 8: the lab room's browsers say Chinese; a visitor's English browser gets
    English.) More cases in test_locale.py."""
    response = client.get(course.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert response["Content-Language"] == "en"
    assert "Accept-Language" in response["Vary"]


def test_vm_lab_page_offers_one_terminal_container_lab_several(client, course, settings):
    vm = client.get("/courses/testcourse/more/labs/tiny-vm/").content.decode()
    container = client.get("/courses/testcourse/basics/labs/hello/").content.decode()
    assert 'data-max-tabs="1"' in vm
    assert f'data-max-tabs="{settings.LABSITE_MAX_TABS}"' in container


def test_a_plain_logout_link_shows_a_page_with_the_button(client, alice):
    client.login(username="alice", password=PASSWORD)
    page = client.get("/accounts/logout/")
    assert page.status_code == 200 and b'method="post"' in page.content
    assert client.get("/accounts/me/").status_code == 200  # a GET changed nothing
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/accounts/me/").status_code == 302  # now logged out
