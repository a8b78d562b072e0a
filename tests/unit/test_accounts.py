"""Enrollment codes and account creation by staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from apps.accounts.roles import Role, role_of
from apps.teaching.models import Classroom
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_student_joins_with_code(client, bob, dave):
    classroom = Classroom.objects.get(name="Dave's class")
    client.login(username="bob", password=PASSWORD)
    response = client.post(reverse("teaching:join"), {"code": classroom.enrollment_code.lower()})
    assert response.status_code == 302
    assert classroom.students.filter(username="bob").exists()


def test_wrong_code_is_refused_with_a_message(client, bob, dave):
    client.login(username="bob", password=PASSWORD)
    response = client.post(reverse("teaching:join"), {"code": "NOPE1234"})
    assert response.status_code == 200
    assert (
        "No class has this code" in response.content.decode()
        or "没有班级" in response.content.decode()
    )
    assert not bob.classrooms.exists()


def test_expired_code_is_refused(client, bob, dave):
    classroom = Classroom.objects.get(name="Dave's class")
    classroom.code_expires_at = timezone.now() - timedelta(minutes=1)
    classroom.save()
    client.login(username="bob", password=PASSWORD)
    client.cookies["django_language"] = "en"
    response = client.post(reverse("teaching:join"), {"code": classroom.enrollment_code})
    assert "This code has expired" in response.content.decode()
    assert not bob.classrooms.exists()


def test_renewed_code_replaces_old(client, carol):
    classroom = Classroom.objects.get(name="Carol's class")
    old = classroom.enrollment_code
    client.login(username="carol", password=PASSWORD)
    client.post(reverse("teaching:renew_code", args=[classroom.pk]))
    classroom.refresh_from_db()
    assert classroom.enrollment_code != old
    assert classroom.code_expires_at > timezone.now()


def test_instructor_creates_student_in_class(client, carol):
    classroom = Classroom.objects.get(name="Carol's class")
    client.login(username="carol", password=PASSWORD)
    client.cookies["django_language"] = "en"
    response = client.post(
        reverse("teaching:create"),
        {"username": "frank", "role": "student", "classroom": classroom.pk},
        follow=True,
    )
    assert response.status_code == 200
    frank = get_user_model().objects.get(username="frank")
    assert role_of(frank) == Role.STUDENT
    assert classroom.students.filter(pk=frank.pk).exists()
    message = next(str(m) for m in response.context["messages"])
    password = message.rsplit(": ", 1)[1].split(" ")[0]
    assert client.login(username="frank", password=password)


def test_instructor_cannot_create_admin(client, carol):
    client.login(username="carol", password=PASSWORD)
    client.post(reverse("teaching:create"), {"username": "mallory", "role": "admin"})
    assert not get_user_model().objects.filter(username="mallory").exists()


def test_admin_creates_instructor(client, erin):
    client.login(username="erin", password=PASSWORD)
    client.post(
        reverse("teaching:create"),
        {"username": "gina", "role": "instructor", "password": "a-long-pass-phrase-9"},
    )
    assert role_of(get_user_model().objects.get(username="gina")) == Role.INSTRUCTOR


def test_api_token_authenticates_scripts(client, alice, course):
    from apps.accounts.models import ApiToken

    _row, token = ApiToken.issue(alice, "laptop")
    response = client.get("/api/labs/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    assert any(lab["slug"] == "hello" for lab in response.json()["labs"])
    bad = client.get("/api/labs/", HTTP_AUTHORIZATION="Token lab_wrong")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "bad_token"


def test_api_errors_are_json(client, alice):
    assert client.get("/api/labs/").json()["error"]["code"] == "not_logged_in"
    client.login(username="alice", password=PASSWORD)
    missing = client.get("/api/nothing-here/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    schema = client.get("/api/openapi.json").json()
    assert "/api/sessions/{session_id}/steps/{number}/check/" in schema["paths"]


def test_username_with_forbidden_characters_is_refused(client, carol):
    client.login(username="carol", password=PASSWORD)
    response = client.post(
        reverse("teaching:create"), {"username": "<b>x y</b>", "role": "student"}
    )
    assert response.status_code == 200  # the form again, with its error
    assert not get_user_model().objects.filter(username__contains="x y").exists()
