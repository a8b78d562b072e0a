"""The JSON API without an engine: its generated schema, who may call it, and that every
failure is JSON. Sessions are rows made here, never started (tests/docker/test_sessions.py
starts real ones through the same API)."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.contrib.staticfiles import finders
from django.test import AsyncClient, Client
from django.utils.module_loading import import_string

from apps.accounts.models import ApiToken
from apps.api import schemas, views
from apps.courses.models import Lab
from apps.sessions import services
from apps.sessions.models import LabSession
from apps.sessions.serializers import session_json

pytestmark = pytest.mark.django_db

PATHS = [
    "/api/labs/",
    "/api/labs/{lab_id}/sessions/",
    "/api/sessions/{session_id}/",
    "/api/sessions/{session_id}/extend/",
    "/api/sessions/{session_id}/stop/",
    "/api/sessions/{session_id}/reset/",
    "/api/sessions/{session_id}/steps/{number}/check/",
]


@pytest.fixture
def alices_session(alice, hello_lab):
    """A session row in its first state: nothing runs, and nothing will."""
    return LabSession.objects.create(owner=alice, lab=hello_lab, backend="docker")


def logged_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def code(response) -> str:
    assert response["Content-Type"] == "application/json", response.content[:200]
    return response.json()["error"]["code"]


# -- the schema --------------------------------------------------------------------------------


def test_schema_is_generated_with_every_path(client):
    schema = client.get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert sorted(schema["paths"]) == sorted(PATHS)
    start = schema["paths"]["/api/labs/{lab_id}/sessions/"]["post"]
    assert {"200", "201", "401", "409"} <= set(start["responses"])
    assert {"TokenAuth", "CookieAuth"} == set(schema["components"]["securitySchemes"])


def test_session_schema_describes_exactly_what_is_sent(alices_session):
    sent = session_json(alices_session)
    assert set(sent) == set(schemas.Session.model_fields)
    schemas.Session.model_validate(sent)


def test_docs_page_is_swagger_from_ninjas_own_files_never_a_cdn(client):
    html = client.get("/api/").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    assert '<script src="http' not in html
    assert '"url": "/api/openapi.json"' in html
    assert finders.find("ninja/swagger-ui-bundle.js")


def test_the_schema_speaks_the_readers_language(client):
    client.cookies["django_language"] = "zh-hans"
    schema = client.get("/api/openapi.json").json()
    summaries = [op["summary"] for ops in schema["paths"].values() for op in ops.values()]
    assert "列出实验" in summaries


# -- who may call it ---------------------------------------------------------------------------


def test_not_logged_in_is_401(client, alices_session):
    assert client.get("/api/labs/").status_code == 401
    assert code(client.get("/api/labs/")) == "not_logged_in"
    assert code(client.post(f"/api/sessions/{alices_session.pk}/stop/")) == "not_logged_in"
    alices_session.refresh_from_db()
    assert alices_session.state == "requested"


def test_token_authenticates_without_csrf_and_a_bad_token_is_401(alice, course):
    _row, token = ApiToken.issue(alice, "laptop")
    client = Client(enforce_csrf_checks=True)
    assert client.get("/api/labs/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    # A POST with a token needs no CSRF token: it gets as far as the session lookup.
    missing = client.post(
        f"/api/sessions/{uuid.uuid4()}/stop/", HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert (missing.status_code, code(missing)) == (404, "not_found")
    bad = client.get("/api/labs/", HTTP_AUTHORIZATION="Token lab_wrong")
    assert (bad.status_code, code(bad)) == (401, "bad_token")


def test_cookie_post_needs_the_csrf_token(alice, alices_session):
    client = logged_in(alice, enforce_csrf_checks=True)
    url = f"/api/sessions/{alices_session.pk}/extend/"
    refused = client.post(url)
    assert (refused.status_code, code(refused)) == (403, "csrf")
    assert "CSRF" in refused.json()["error"]["message"]
    client.get("/api/")  # a page with a form sets the CSRF cookie
    allowed = client.post(url, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert (allowed.status_code, code(allowed)) == (409, "not_running")  # past auth and CSRF


def test_csrf_failure_view_is_json_under_api_and_djangos_page_elsewhere(rf):
    failure = import_string(django_settings.CSRF_FAILURE_VIEW)
    assert failure is views.csrf_failure
    response = failure(rf.post("/api/labs/1/sessions/"))
    assert response.status_code == 403
    assert json.loads(response.content)["error"]["code"] == "csrf"
    page = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "x"})
    assert page.status_code == 403 and page["Content-Type"].startswith("text/html")


# -- what it answers ---------------------------------------------------------------------------


def test_labs_lists_the_fixture_labs(alice, course):
    body = logged_in(alice).get("/api/labs/").json()
    assert sorted(lab["slug"] for lab in body["labs"]) == sorted(
        Lab.objects.values_list("slug", flat=True)
    )
    hello = next(lab for lab in body["labs"] if lab["slug"] == "hello")
    assert hello["start_url"] == f"/api/labs/{hello['id']}/sessions/"
    assert (hello["kind"], hello["status"]) == ("container", "ready")
    assert set(hello) == set(schemas.Lab.model_fields)


def test_session_is_sent_exactly_as_serialized(alice, alices_session):
    body = logged_in(alice).get(f"/api/sessions/{alices_session.pk}/").json()
    assert body == session_json(alices_session)


def test_only_owner_teachers_and_admins_see_a_session(
    alice, bob, carol, dave, erin, alices_session
):
    url = f"/api/sessions/{alices_session.pk}/"
    for user, status in [(alice, 200), (bob, 404), (carol, 200), (dave, 404), (erin, 200)]:
        response = logged_in(user).get(url)
        assert response.status_code == status, user.username
    assert code(logged_in(bob).get(url)) == "not_found"


def test_only_the_student_resets_their_lab(carol, alices_session):
    response = logged_in(carol).post(f"/api/sessions/{alices_session.pk}/reset/")
    assert (response.status_code, code(response)) == (403, "forbidden")


def test_lab_errors_keep_their_status(alice, course):
    later = Lab.objects.get(slug="later")  # planned, not ready
    response = logged_in(alice).post(f"/api/labs/{later.pk}/sessions/")
    assert (response.status_code, code(response)) == (409, "lab_not_ready")
    missing = logged_in(alice).post("/api/labs/999999/sessions/")
    assert (missing.status_code, code(missing)) == (404, "not_found")
    assert not LabSession.objects.exists()


# -- failures are JSON -------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_api_path_is_json_404(alice, settings, debug):
    settings.DEBUG = debug
    response = logged_in(alice).get("/api/nothing-here/")
    assert (response.status_code, code(response)) == (404, "not_found")


@pytest.mark.parametrize(
    "method,path,field",
    [
        ("get", "/api/sessions/not-a-uuid/", "session_id"),
        ("post", "/api/labs/abc/sessions/", "lab_id"),
        ("post", "/api/sessions/{id}/steps/0/check/", "number"),
    ],
)
def test_malformed_path_parameter_is_json_422(alice, alices_session, method, path, field):
    response = getattr(logged_in(alice), method)(path.format(id=alices_session.pk))
    assert (response.status_code, code(response)) == (422, "invalid")
    error = response.json()["error"]
    assert field in error["message"]
    assert error["details"][0]["loc"] == ["path", field]


def test_unexpected_error_is_json_500_and_logged(alice, alices_session, monkeypatch, caplog):
    def broken(user, session_id):
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(services, "get_visible_session", broken)
    with caplog.at_level(logging.ERROR, logger="apps.api"):
        response = logged_in(alice).get(f"/api/sessions/{alices_session.pk}/")
    assert (response.status_code, code(response)) == (500, "internal")
    assert "fell over" not in response.content.decode()
    record = next(r for r in caplog.records if r.name == "apps.api.errors")
    assert record.exc_info and "the database fell over" in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_auth_runs_on_the_event_loop_without_touching_the_orm_synchronously(alice, course):
    """Under ASGI, as in production: the auth classes await ``request.auser()``."""
    _row, token = await database_sync_to_async(ApiToken.issue)(alice, "laptop")
    by_token = await AsyncClient().get("/api/labs/", headers={"Authorization": f"Token {token}"})
    assert by_token.status_code == 200
    bad = await AsyncClient().get("/api/labs/", headers={"Authorization": "Token lab_wrong"})
    assert code(bad) == "bad_token"
    browser = AsyncClient(enforce_csrf_checks=True)
    await browser.aforce_login(alice)
    assert (await browser.get("/api/labs/")).status_code == 200
    refused = await browser.post(f"/api/sessions/{uuid.uuid4()}/stop/")
    assert (refused.status_code, code(refused)) == (403, "csrf")
