"""The instructor's live class page: the grid, its socket, Stop, CSV out and accounts in."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from apps.courses.models import Lab, StepProgress
from apps.sessions import events
from apps.sessions.models import EndReason, LabSession, State
from apps.teaching.grid import class_grid
from apps.teaching.models import Classroom, Enrollment
from apps.terminals import protocol

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def room(carol, course):
    return Classroom.objects.get(name="Carol's class")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def running(user, slug="hello") -> LabSession:
    now = timezone.now()
    return LabSession.objects.create(
        owner=user, lab=Lab.objects.get(slug=slug), backend="docker", state=State.RUNNING,
        started_at=now - timedelta(minutes=7), expires_at=now + timedelta(minutes=20),
    )  # fmt: skip


def test_the_grid_shows_passes_time_spent_and_who_is_in_which_lab(room, alice):
    hello = Lab.objects.get(slug="hello")
    StepProgress.objects.create(user=alice, step=hello.steps.get(number=1))
    session = running(alice)
    grid = class_grid(room)
    student = next(s for s in grid["students"] if s["username"] == "alice")
    assert student["labs"][str(hello.pk)]["passed"] == [1]
    assert 400 <= student["labs"][str(hello.pk)]["seconds_spent"] <= 440
    assert student["sessions"][0]["id"] == str(session.pk)
    assert 1100 <= student["sessions"][0]["seconds_left"] <= 1200
    assert [s["number"] for s in next(x for x in grid["labs"] if x["id"] == hello.pk)["steps"]] == [
        1,
        2,
    ]


def test_students_and_outsiders_cannot_reach_the_class_page(room, alice, dave, carol):
    assert client_for(alice).get(f"/classes/{room.pk}/").status_code == 403
    assert client_for(dave).get(f"/classes/{room.pk}/").status_code == 403
    page = client_for(carol).get(f"/classes/{room.pk}/")
    assert page.status_code == 200 and "class-grid" in page.content.decode()


async def live_socket(user, pk: int) -> WebsocketCommunicator:
    from labsite.asgi import application

    client = Client()
    await database_sync_to_async(client.force_login)(user)
    headers = [
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    communicator = WebsocketCommunicator(application, f"/ws/classes/{pk}/live/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def grid_message(communicator, timeout: float = 5) -> dict:
    message = await communicator.receive_output(timeout=timeout)
    assert message["type"] == "websocket.send", message
    return json.loads(message["text"])["grid"]


async def test_the_page_hears_a_students_start_and_pass(room, alice, carol):
    socket = await live_socket(carol, room.pk)
    first = await grid_message(socket)
    assert next(s for s in first["students"] if s["username"] == "alice")["sessions"] == []

    session = await database_sync_to_async(running)(alice)
    await events.session_changed(session.pk)
    pushed = await grid_message(socket)
    alice_row = next(s for s in pushed["students"] if s["username"] == "alice")
    assert alice_row["sessions"][0]["state"] == "running"

    hello = await database_sync_to_async(Lab.objects.get)(slug="hello")
    step = await database_sync_to_async(hello.steps.get)(number=2)
    await database_sync_to_async(StepProgress.objects.create)(user=alice, step=step)
    await events.student_activity(alice.pk)
    pushed = await grid_message(socket)
    alice_row = next(s for s in pushed["students"] if s["username"] == "alice")
    assert alice_row["labs"][str(hello.pk)]["passed"] == [2]
    await socket.disconnect()


async def test_the_socket_refuses_students_and_other_instructors(room, alice, dave):
    for outsider in (alice, dave):
        socket = await live_socket(outsider, room.pk)
        message = await socket.receive_output(timeout=5)
        assert message == {"type": "websocket.close", "code": protocol.FORBIDDEN}


async def test_a_student_who_joins_later_is_followed(room, carol, bob):
    socket = await live_socket(carol, room.pk)
    await grid_message(socket)
    await database_sync_to_async(Enrollment.objects.create)(classroom=room, student=bob)
    pushed = await grid_message(socket)
    assert "bob" in [s["username"] for s in pushed["students"]]
    session = await database_sync_to_async(running)(bob)
    await events.session_changed(session.pk)
    pushed = await grid_message(socket)
    assert next(s for s in pushed["students"] if s["username"] == "bob")["sessions"]
    await socket.disconnect()


def test_stop_ends_a_students_session_for_the_classes_instructors_only(room, alice, carol, dave):
    session = running(alice)
    url = f"/classes/{room.pk}/sessions/{session.pk}/stop/"
    assert client_for(dave).post(url).status_code == 403
    assert client_for(alice).post(url).status_code == 403
    assert client_for(carol).post(url).status_code == 302
    session.refresh_from_db()
    assert session.state == State.STOPPING and session.end_reason == EndReason.INSTRUCTOR


def test_the_csv_export_has_a_row_per_student(room, alice):
    hello = Lab.objects.get(slug="hello")
    StepProgress.objects.create(user=alice, step=hello.steps.get(number=1))
    response = client_for(room.instructors.first()).get(f"/classes/{room.pk}/export.csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads it as UTF-8
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    alice_row = next(r for r in rows if r[0] == "alice")
    assert "1/2" in alice_row


def upload(client, pk: int, text: str, encoding: str = "utf-8-sig"):
    data = SimpleUploadedFile("students.csv", text.encode(encoding), content_type="text/csv")
    return client.post(f"/classes/{pk}/students/import/", {"file": data})


def test_a_bulk_import_with_one_bad_row_creates_nothing(room, carol, alice):
    users = get_user_model()
    before = users.objects.count()
    page = upload(
        client_for(carol),
        room.pk,
        "username,name\nwang.fang,王芳\nalice,Alice again\nbad name!,x\n",
    )
    text = page.content.decode()
    assert (page.status_code == 200 and "alice" in text and "Line 3" in text) or "第 3" in text
    assert users.objects.count() == before


def test_a_bulk_import_enrolls_students_and_shows_the_passwords_once(room, carol):
    client = client_for(carol)
    page = upload(
        client, room.pk, "username,name,email\nwang.fang,王芳,wf@example.edu\nli.lei,李雷\n"
    )
    assert page.status_code == 200
    shown = page.context["created"]
    assert [u for u, _ in shown] == ["wang.fang", "li.lei"]
    wang = get_user_model().objects.get(username="wang.fang")
    assert wang.first_name == "王芳" and wang.check_password(shown[0][1])
    assert room.students.filter(username="li.lei").exists()
    download = client.post(f"/classes/{room.pk}/students/passwords/")
    rows = list(csv.reader(io.StringIO(download.content.decode().lstrip("\ufeff"))))
    assert rows == [["username", "password"], *[list(r) for r in shown]]
    again = client.post(f"/classes/{room.pk}/students/passwords/")
    assert again.status_code == 302  # gone after the one download
