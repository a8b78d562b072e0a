"""The instructor's live class page: the grid, its socket, Stop, CSV out and accounts in.

Personas (tests/conftest.py): alice is in Carol's class, bob in none; carol teaches it,
dave teaches another class, erin is an administrator."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.roles import Role, is_instructor
from apps.courses.models import Lab, StepProgress
from apps.sessions import events
from apps.sessions.models import EndReason, LabSession, State
from apps.teaching.class_views import PASSWORDS_KEY
from apps.teaching.grid import class_grid
from apps.teaching.models import Classroom, Enrollment
from apps.terminals import protocol

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _quiet_refresh(monkeypatch):
    """The periodic refresh would interleave with the pushes the tests wait for."""
    from apps.teaching import consumers

    monkeypatch.setattr(consumers, "REFRESH_SECONDS", 3600)


@pytest.fixture
def room(carol, course):
    return Classroom.objects.get(name="Carol's class")


def client_for(user, language: str = "en") -> Client:
    client = Client()
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def running(user, slug="hello", minutes_in=7) -> LabSession:
    now = timezone.now()
    return LabSession.objects.create(
        owner=user, lab=Lab.objects.get(slug=slug), backend="docker", state=State.RUNNING,
        started_at=now - timedelta(minutes=minutes_in), expires_at=now + timedelta(minutes=20),
    )  # fmt: skip


def ended(user, slug="hello", minutes=10, ago=60) -> LabSession:
    end = timezone.now() - timedelta(minutes=ago)
    return LabSession.objects.create(
        owner=user, lab=Lab.objects.get(slug=slug), backend="docker", state=State.STOPPED,
        started_at=end - timedelta(minutes=minutes), ended_at=end,
    )  # fmt: skip


def row_of(grid: dict, username: str) -> dict:
    return next(s for s in grid["students"] if s["username"] == username)


# -- the grid's data -------------------------------------------------------------------------


def test_the_grid_shows_passes_time_spent_and_who_is_in_which_lab(room, alice):
    hello = Lab.objects.get(slug="hello")
    ended(alice, minutes=10)
    session = running(alice, minutes_in=7)
    StepProgress.objects.create(user=alice, step=hello.steps.get(number=1))
    grid = class_grid(room)
    alice_row = row_of(grid, "alice")
    cell = alice_row["labs"][str(hello.pk)]
    assert cell["passed"] == [1]
    assert 17 * 60 - 5 <= cell["seconds_spent"] <= 17 * 60 + 5  # 10 min ended + 7 running
    [live] = alice_row["sessions"]
    assert live["id"] == str(session.pk) and live["lab"] == hello.pk and live["state"] == "running"
    assert 19 * 60 <= live["seconds_left"] <= 20 * 60
    assert live["watch_url"] == f"/classes/{room.pk}/watch/{session.pk}/"
    assert live["recordings_url"] == f"/recordings/session/{session.pk}/"
    lab = next(x for x in grid["labs"] if x["id"] == hello.pk)
    assert [s["number"] for s in lab["steps"]] == [1, 2]


def test_the_grid_calls_a_placed_start_starting_and_only_a_waiting_one_queued(room, alice):
    hello = Lab.objects.get(slug="hello")
    LabSession.objects.create(owner=alice, lab=hello, backend="docker")
    assert [s["state_label"] for s in row_of(class_grid(room), "alice")["sessions"]] == [
        str(State.STARTING.label)
    ]
    LabSession.objects.filter(owner=alice).update(backend="")
    assert [s["state_label"] for s in row_of(class_grid(room), "alice")["sessions"]] == [
        str(State.REQUESTED.label)
    ]


def test_last_active_is_the_latest_of_login_keystrokes_and_passes(room, alice):
    assert row_of(class_grid(room), "alice")["last_active"] is None
    hello = Lab.objects.get(slug="hello")
    StepProgress.objects.create(user=alice, step=hello.steps.get(number=1))
    passed_at = StepProgress.objects.get(user=alice).passed_at
    assert row_of(class_grid(room), "alice")["last_active"] == passed_at.isoformat()


def test_the_grid_costs_the_same_queries_for_one_student_or_many(room, alice, django_user_model):
    hello = Lab.objects.get(slug="hello")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            class_grid(Classroom.objects.get(pk=room.pk))
        return len(captured)

    running(alice)
    one = queries()
    for n in range(5):
        student = django_user_model.objects.create_user(username=f"s{n}")
        Enrollment.objects.create(classroom=room, student=student)
        running(student)
        ended(student)
        StepProgress.objects.create(user=student, step=hello.steps.get(number=1))
    assert queries() == one


def test_students_and_outsiders_cannot_reach_the_class_page(room, alice, dave, carol, erin):
    assert client_for(alice).get(f"/classes/{room.pk}/").status_code == 403
    assert client_for(dave).get(f"/classes/{room.pk}/").status_code == 403
    assert Client().get(f"/classes/{room.pk}/").status_code == 302  # to the login page
    assert client_for(erin).get(f"/classes/{room.pk}/").status_code == 200
    page = client_for(carol).get(f"/classes/{room.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="class-grid"' in text and f'data-url="/ws/classes/{room.pk}/live/"' in text


# -- the socket --------------------------------------------------------------------------------


async def live_socket(user, pk: int, client: Client | None = None) -> WebsocketCommunicator:
    from labsite.asgi import application

    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
    if user is not None:
        client = client or Client()
        await database_sync_to_async(client.force_login)(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/classes/{pk}/live/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def receive(communicator, timeout: float = 5) -> dict:
    message = await communicator.receive_output(timeout=timeout)
    assert message["type"] == "websocket.send", message
    return json.loads(message["text"])


async def grid_message(communicator) -> dict:
    data = await receive(communicator)
    assert data["type"] == "grid", data
    return data["grid"]


async def rows_message(communicator) -> list[dict]:
    data = await receive(communicator)
    assert data["type"] == "rows", data
    return data["rows"]


async def close_code(communicator, timeout: float = 5) -> int:
    while True:
        message = await communicator.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return message["code"]


async def test_the_page_hears_a_students_start_and_pass(room, alice, carol):
    socket = await live_socket(carol, room.pk)
    assert row_of(await grid_message(socket), "alice")["sessions"] == []

    session = await database_sync_to_async(running)(alice)
    await events.session_changed(session.pk)
    [alice_row] = await rows_message(socket)
    assert alice_row["username"] == "alice"
    assert [s["state"] for s in alice_row["sessions"]] == ["running"]

    hello = await database_sync_to_async(Lab.objects.get)(slug="hello")
    step = await database_sync_to_async(hello.steps.get)(number=2)
    await database_sync_to_async(StepProgress.objects.create)(user=alice, step=step)
    await events.student_activity(alice.pk)
    [alice_row] = await rows_message(socket)
    assert alice_row["labs"][str(hello.pk)]["passed"] == [2]
    await socket.disconnect()


async def test_a_burst_of_activity_is_one_push(room, alice, carol):
    socket = await live_socket(carol, room.pk)
    await grid_message(socket)
    await events.student_activity(alice.pk)
    await rows_message(socket)  # the first comes at once
    for _ in range(10):
        await events.student_activity(alice.pk)
    await rows_message(socket)  # the burst, together, at most COALESCE_SECONDS later
    assert await socket.receive_nothing(timeout=1.0)
    await socket.disconnect()


async def test_the_socket_refuses_students_other_instructors_and_strangers(room, alice, dave):
    for outsider in (alice, dave):
        socket = await live_socket(outsider, room.pk)
        assert await close_code(socket) == protocol.FORBIDDEN
    assert await close_code(await live_socket(None, room.pk)) == protocol.UNAUTHENTICATED


async def test_an_instructor_of_another_class_hears_nothing_of_its_students(room, alice, dave):
    dave_room = await database_sync_to_async(Classroom.objects.get)(name="Dave's class")
    socket = await live_socket(dave, dave_room.pk)
    assert (await grid_message(socket))["students"] == []
    await events.student_activity(alice.pk)
    assert await socket.receive_nothing(timeout=1.0)
    await socket.disconnect()


async def test_a_student_who_joins_later_is_followed_and_one_who_leaves_is_not(room, carol, bob):
    socket = await live_socket(carol, room.pk)
    await grid_message(socket)
    await database_sync_to_async(Enrollment.objects.create)(classroom=room, student=bob)
    assert "bob" in [s["username"] for s in (await grid_message(socket))["students"]]
    session = await database_sync_to_async(running)(bob)
    await events.session_changed(session.pk)
    [bob_row] = await rows_message(socket)
    assert bob_row["username"] == "bob" and bob_row["sessions"]

    await database_sync_to_async(Enrollment.objects.filter(student=bob).delete)()
    assert "bob" not in [s["username"] for s in (await grid_message(socket))["students"]]
    await events.student_activity(bob.pk)
    assert await socket.receive_nothing(timeout=1.0)
    await socket.disconnect()


async def test_the_socket_closes_on_logout_and_when_the_class_is_taken_away(room, carol):
    client = Client()
    socket = await live_socket(carol, room.pk, client)
    await grid_message(socket)
    await database_sync_to_async(client.logout)()
    assert await close_code(socket) == protocol.UNAUTHENTICATED

    socket = await live_socket(carol, room.pk)
    await grid_message(socket)
    await database_sync_to_async(room.instructors.remove)(carol)
    assert await close_code(socket) == protocol.FORBIDDEN


# -- Stop --------------------------------------------------------------------------------------


def test_stop_is_for_the_classes_instructors_and_admins_only(room, alice, bob, carol, dave, erin):
    session = running(alice)
    url = f"/classes/{room.pk}/sessions/{session.pk}/stop/"
    assert client_for(dave).post(url).status_code == 403
    assert client_for(alice).post(url).status_code == 403
    assert client_for(carol).get(url).status_code == 405
    session.refresh_from_db()
    assert session.state == State.RUNNING

    response = client_for(carol).post(url)
    assert response.status_code == 302 and response["Location"] == f"/classes/{room.pk}/"
    session.refresh_from_db()
    assert session.state == State.STOPPING and session.end_reason == EndReason.INSTRUCTOR

    # Only sessions of the class's own students, whatever the id.
    outsider = running(bob)
    stop_bob = f"/classes/{room.pk}/sessions/{outsider.pk}/stop/"
    assert client_for(carol).post(stop_bob).status_code == 404
    assert client_for(erin).post(stop_bob).status_code == 404
    outsider.refresh_from_db()
    assert outsider.state == State.RUNNING

    again = running(alice, slug="custom-image")
    stop_again = f"/classes/{room.pk}/sessions/{again.pk}/stop/"
    assert client_for(erin).post(stop_again).status_code == 302
    again.refresh_from_db()
    assert again.state == State.STOPPING


# -- CSV out -----------------------------------------------------------------------------------


def test_the_csv_export_has_a_row_per_student(room, alice, carol, dave):
    hello = Lab.objects.get(slug="hello")
    alice.first_name = "爱丽丝"
    alice.save()
    StepProgress.objects.create(user=alice, step=hello.steps.get(number=1))
    ended(alice, minutes=12)
    url = f"/classes/{room.pk}/export.csv"
    assert client_for(dave).get(url).status_code == 403
    response = client_for(carol).get(url)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads it as UTF-8
    header, *rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert header[:3] == ["Username", "Name", "Last active"]
    column = header.index("Hello, container: steps passed")
    assert header[column + 1] == "Hello, container: minutes"
    [alice_row] = [r for r in rows if r[0] == "alice"]
    assert alice_row[1] == "爱丽丝"
    assert alice_row[column : column + 2] == ["1/2", "12"]
    assert alice_row[2][:4].isdigit()  # a local date and time, e.g. 2026-03-02 14:05


# -- accounts in -------------------------------------------------------------------------------


def upload(client, pk: int, text: str, encoding: str = "utf-8-sig"):
    data = SimpleUploadedFile("students.csv", text.encode(encoding), content_type="text/csv")
    return client.post(f"/classes/{pk}/students/import/", {"file": data})


def test_a_bulk_import_with_bad_rows_creates_nothing_and_names_each(room, carol, alice):
    users = get_user_model()
    before = users.objects.count()
    page = upload(
        client_for(carol),
        room.pk,
        "username,name,email\n"
        "wang.fang,王芳,\n"
        "ALICE,Alice again,\n"  # taken (any case)
        "bad name!,x,\n"
        "wang.fang,王芳 again,\n"  # twice in the file
        "li.lei,李雷,not-an-address\n",
    )
    assert page.status_code == 200
    errors = page.context["errors"]
    assert [e.split(":")[0] for e in errors] == ["Line 3", "Line 4", "Line 5", "Line 6"]
    assert "taken" in errors[0] and "username" in errors[1]
    assert "twice" in errors[2] and "email" in errors[3]
    assert users.objects.count() == before
    assert not users.objects.filter(username="wang.fang").exists()


def test_a_bulk_import_enrolls_students_and_shows_the_passwords_once(room, carol):
    client = client_for(carol)
    page = upload(
        client, room.pk, "username,name,email\nwang.fang,王芳,wf@example.edu\nli.lei,李雷\n"
    )
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    shown = page.context["created"]
    assert [u for u, _ in shown] == ["wang.fang", "li.lei"]
    assert all(pw in page.content.decode() for _, pw in shown)
    wang = get_user_model().objects.get(username="wang.fang")
    assert wang.get_full_name() == "王芳" and wang.email == "wf@example.edu"
    assert wang.check_password(shown[0][1]) and not is_instructor(wang)
    assert wang.groups.filter(name=Role.STUDENT.value).exists()
    assert set(room.students.values_list("username", flat=True)) >= {"wang.fang", "li.lei"}

    download = client.post(f"/classes/{room.pk}/students/passwords/")
    text = download.content.decode()
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows == [["username", "password"], *[list(r) for r in shown]]
    assert PASSWORDS_KEY not in client.session  # nothing keeps them any more
    again = client.post(f"/classes/{room.pk}/students/passwords/")
    assert again.status_code == 302  # gone after the one download
    assert shown[0][1] not in client.get(f"/classes/{room.pk}/").content.decode()


def test_a_bulk_import_reads_excels_files_and_chinese_headers(room, carol):
    client = client_for(carol)
    # Excel's "CSV UTF-8" (with a BOM), columns by Chinese names, family name first.
    page = upload(client, room.pk, "学号,姓,名,邮箱\n2024001,王,芳,\n2024002,李,雷,ll@x.edu\n")
    assert [u for u, _ in page.context["created"]] == ["2024001", "2024002"]
    assert get_user_model().objects.get(username="2024001").get_full_name() == "王芳"
    # Excel's plain "CSV" on a Chinese Windows: GB18030, no header.
    page = upload(client, room.pk, "zhang.wei,张伟\n", encoding="gb18030")
    assert [u for u, _ in page.context["created"]] == ["zhang.wei"]
    assert get_user_model().objects.get(username="zhang.wei").first_name == "张伟"
    # Without a BOM, English names split as the account form splits them.
    page = upload(client, room.pk, "username,name\nann.lee,Ann Lee\n", encoding="utf-8")
    ann = get_user_model().objects.get(username="ann.lee")
    assert (ann.first_name, ann.last_name) == ("Ann", "Lee")


def test_only_the_classes_instructors_import(room, alice, dave):
    for outsider in (alice, dave):
        assert upload(client_for(outsider), room.pk, "x1\n").status_code == 403
    assert not get_user_model().objects.filter(username="x1").exists()


def test_the_passwords_of_an_import_are_not_kept_for_long(room, carol, monkeypatch):
    client = client_for(carol)
    upload(client, room.pk, "late.one,Late\n")
    from apps.teaching import class_views

    monkeypatch.setattr(class_views, "PASSWORDS_KEPT_SECONDS", 0)
    assert client.post(f"/classes/{room.pk}/students/passwords/").status_code == 302
