"""Terminal recordings: what the recorder writes, what the retention removes, who may replay.

The recorder is driven as the terminal consumer drives it (open, output chunks, resize,
markers, close) against a real session row and a real directory; the real container
terminal is recorded in tests/docker/test_recordings.py."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from datetime import timedelta
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.test import AsyncClient
from django.utils import timezone

from apps.recordings import files, recorder
from apps.recordings.models import Recording
from apps.recordings.recorder import Recorder
from apps.recordings.retention import prune
from apps.sessions.models import LabSession


@pytest.fixture(autouse=True)
def recordings_dir(settings, tmp_path):
    settings.LABSITE_RECORDINGS = True
    settings.LABSITE_RECORDING_DAYS = 30
    settings.LABSITE_RECORDINGS_DIR = tmp_path / "recordings"
    return settings.LABSITE_RECORDINGS_DIR


def read_cast(path) -> tuple[dict, list[list]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def output_text(events) -> str:
    return "".join(data for _t, code, data in events if code == "o")


@database_sync_to_async
def new_session(owner, lab) -> LabSession:
    return LabSession.objects.create(owner=owner, lab=lab, backend="docker")


@database_sync_to_async
def only_recording() -> Recording:
    return Recording.objects.select_related("session").get()


# -- the writer --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
class TestWriter:
    async def test_a_segment_is_asciicast_v2_with_output_resize_and_markers(
        self, alice, hello_lab, recordings_dir
    ):
        session = await new_session(alice, hello_lab)
        before = timezone.now()
        rec = await Recorder.open(session.pk, 2, 100, 30)
        rec.output(b"# echo hi\r\nhi\r\n")
        rec.resize(120, 40)
        rec.marker("step 1 passed: 写一个文件")
        rec.output(b"# ")
        await rec.close()

        row = await only_recording()
        assert row.file_path.parent == recordings_dir / str(session.pk)
        header, events = read_cast(row.file_path)
        assert header["version"] == 2
        assert (header["width"], header["height"]) == (100, 30)
        assert abs(header["timestamp"] - before.timestamp()) < 5
        assert hello_lab.title in header["title"] and "alice" in header["title"]
        assert [(code, data) for _t, code, data in events] == [
            ("o", "# echo hi\r\nhi\r\n"),
            ("r", "120x40"),
            ("m", "step 1 passed: 写一个文件"),
            ("o", "# "),
        ]
        times = [t for t, _code, _data in events]
        assert times == sorted(times) and 0 <= times[0] < 5  # relative to the segment start
        assert row.tab == 2 and (row.cols, row.rows) == (100, 30)
        assert row.ended_at is not None and row.markers == 1
        assert row.bytes == row.file_path.stat().st_size
        assert row.file_path.stat().st_mode & 0o077 == 0  # only the site may read it

    async def test_a_character_split_across_chunks_is_not_garbled(self, alice, hello_lab):
        session = await new_session(alice, hello_lab)
        rec = await Recorder.open(session.pk, 1, 80, 24)
        word = "容器化".encode()  # three bytes a character
        rec.output(b"a" + word[:1])
        rec.output(word[1:4])
        rec.output(word[4:] + b"b")
        await rec.close()
        _header, events = read_cast((await only_recording()).file_path)
        assert output_text(events) == "a容器化b"
        assert "\ufffd" not in output_text(events)

    async def test_output_reaches_the_disk_within_seconds_while_still_attached(
        self, alice, hello_lab
    ):
        """A web process killed mid-lab loses at most the last second or so."""
        session = await new_session(alice, hello_lab)
        rec = await Recorder.open(session.pk, 1, 80, 24)
        rec.output(b"still-typing")
        path = (await only_recording()).file_path
        for _ in range(40):
            if path.exists() and "still-typing" in path.read_text():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("output not on disk after 4 s")
        await rec.close()

    async def test_a_slow_disk_bounds_memory_by_dropping_output_not_by_waiting(
        self, alice, hello_lab, monkeypatch
    ):
        release = threading.Event()
        real_append = files.append

        def stuck_append(path, data):
            release.wait(10)
            real_append(path, data)

        monkeypatch.setattr(files, "append", stuck_append)
        monkeypatch.setattr(recorder, "MAX_BACKLOG", 256 * 1024)
        session = await new_session(alice, hello_lab)
        rec = await Recorder.open(session.pk, 1, 80, 24)
        chunk = b"x" * 16384
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(200):  # 3.2 MB while the disk writes nothing
            rec.output(chunk)
            await asyncio.sleep(0)
        assert loop.time() - started < 1  # nothing waited for the disk
        assert rec.dropped > 0
        assert rec._pending + rec._in_flight <= 256 * 1024 + 2 * len(chunk) + 1024
        release.set()
        await rec.close()
        row = await only_recording()
        assert row.dropped_bytes == rec.dropped
        _header, events = read_cast(row.file_path)
        assert 0 < len(output_text(events)) < 200 * len(chunk)

    async def test_nothing_is_recorded_when_recordings_are_off(
        self, alice, hello_lab, settings, recordings_dir
    ):
        settings.LABSITE_RECORDINGS = False
        session = await new_session(alice, hello_lab)
        rec = await Recorder.open(session.pk, 1, 80, 24)
        rec.output(b"secret")
        rec.marker("step 1 passed: x")
        await rec.close()
        count = await database_sync_to_async(Recording.objects.count)()
        assert count == 0 and not recordings_dir.exists()

    async def test_a_session_that_vanished_gives_a_terminal_without_recording(self, db):
        rec = await Recorder.open("00000000-0000-0000-0000-000000000000", 1, 80, 24)
        rec.output(b"still works")
        await rec.close()
        assert not rec.enabled


# -- retention ---------------------------------------------------------------------------


def segment(session, started, ended, name: str) -> Recording:
    row = Recording.objects.create(
        session=session, tab=1, started_at=started, ended_at=ended,
        path=f"{session.pk}/{name}.cast", cols=80, rows=24,
    )  # fmt: skip
    row.file_path.parent.mkdir(parents=True, exist_ok=True)
    row.file_path.write_text('{"version": 2}\n')
    return row


@pytest.mark.django_db
def test_prune_removes_old_recordings_files_and_rows_only(alice, hello_lab, recordings_dir):
    session = LabSession.objects.create(owner=alice, lab=hello_lab, backend="docker")
    now = timezone.now()
    day = timedelta(days=1)
    old = segment(session, now - 40 * day, now - 40 * day + timedelta(hours=1), "old")
    never_closed = segment(session, now - 31 * day, None, "never-closed")
    ended_recently = segment(session, now - 31 * day, now - 29 * day, "long")
    recent = segment(session, now - day, now - day, "recent")
    # A file whose row went with its session (deleted in the admin), and a fresh one.
    stale_orphan = recordings_dir / "gone-session" / "1-x.cast"
    stale_orphan.parent.mkdir()
    stale_orphan.write_text("{}\n")
    os.utime(stale_orphan, ((now - 40 * day).timestamp(),) * 2)
    fresh_orphan = recordings_dir / "gone-session" / "2-y.cast"
    fresh_orphan.write_text("{}\n")

    assert prune(now) == 3  # two rows, one orphan file

    kept = set(Recording.objects.values_list("pk", flat=True))
    assert kept == {ended_recently.pk, recent.pk}
    assert not old.file_path.exists() and not never_closed.file_path.exists()
    assert ended_recently.file_path.exists() and recent.file_path.exists()
    assert not stale_orphan.exists() and fresh_orphan.exists()
    assert prune(now) == 0


@pytest.mark.django_db
def test_prune_command_reports_what_it_removed(alice, hello_lab, settings):
    settings.LABSITE_RECORDING_DAYS = 7
    session = LabSession.objects.create(owner=alice, lab=hello_lab, backend="docker")
    now = timezone.now()
    segment(session, now - timedelta(days=8), now - timedelta(days=8), "a")
    segment(session, now - timedelta(days=6), now - timedelta(days=6), "b")
    out = StringIO()
    call_command("prune_recordings", stdout=out)
    assert "1 recordings older than 7 days removed" in out.getvalue()
    assert Recording.objects.count() == 1


# -- who may replay ----------------------------------------------------------------------


@pytest.fixture
def alices_recording(alice, hello_lab):
    session = LabSession.objects.create(owner=alice, lab=hello_lab, backend="docker")
    now = timezone.now()
    row = segment(session, now - timedelta(minutes=5), now, "1-alice")
    row.file_path.write_text(
        json.dumps({"version": 2, "width": 80, "height": 24}) + "\n"
        + json.dumps([0.5, "o", "echo alice-was-here\r\n"]) + "\n"
        + json.dumps([1.5, "m", "step 1 passed: 写一个文件"]) + "\n"
    )  # fmt: skip
    return row


def urls(recording) -> list[str]:
    return [
        f"/recordings/{recording.pk}/",
        f"/recordings/{recording.pk}/cast",
        f"/recordings/session/{recording.session_id}/",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "who,allowed",
    [("alice", True), ("carol", True), ("erin", True), ("dave", False), ("bob", False)],
)
def test_the_owner_their_instructors_and_admins_replay_others_get_404(
    client, alices_recording, alice, bob, carol, dave, erin, who, allowed
):
    client.force_login({"alice": alice, "bob": bob, "carol": carol, "dave": dave,
                        "erin": erin}[who])  # fmt: skip
    for url in urls(alices_recording):
        assert client.get(url).status_code == (200 if allowed else 404), url
    listed = alices_recording.session.lab.title in client.get("/recordings/").content.decode()
    assert listed == allowed


@pytest.mark.django_db(transaction=True)
async def test_the_cast_is_served_as_written_and_never_cached_by_others(alices_recording, alice):
    client = AsyncClient()
    await sync_to_async(client.force_login)(alice)
    response = await client.get(f"/recordings/{alices_recording.pk}/cast")
    assert response["Content-Type"] == "application/x-asciicast"
    assert "private" in response["Cache-Control"]
    served = b"".join([chunk async for chunk in response.streaming_content])
    assert served == alices_recording.file_path.read_bytes()
    assert int(response["Content-Length"]) == len(served)


@pytest.mark.django_db
def test_the_player_page_points_at_the_cast_and_offers_speeds(client, alices_recording, alice):
    client.force_login(alice)
    client.cookies["django_language"] = "en"
    html = client.get(f"/recordings/{alices_recording.pk}/").content.decode()
    assert f'data-cast-url="/recordings/{alices_recording.pk}/cast"' in html
    for speed in ("0.5", "1", "2", "4"):
        assert f'<option value="{speed}"' in html
    assert "replay.js" in html and "asciinema-player.css" in html


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(client, alices_recording):
    for url in [*urls(alices_recording), "/recordings/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_missing_file_is_404_not_an_error(client, alices_recording, alice):
    alices_recording.file_path.unlink()
    client.force_login(alice)
    assert client.get(f"/recordings/{alices_recording.pk}/cast").status_code == 404


@pytest.mark.django_db
def test_the_list_is_newest_first_with_student_lab_and_length(
    client, alices_recording, alice, hello_lab, carol
):
    now = timezone.now()
    newer = segment(alices_recording.session, now - timedelta(minutes=1), None, "2-newer")
    client.force_login(carol)
    client.cookies["django_language"] = "en"
    html = client.get("/recordings/").content.decode()
    assert html.index(f"/recordings/{newer.pk}/") < html.index(
        f"/recordings/{alices_recording.pk}/"
    )
    assert "alice" in html and hello_lab.title in html
    assert str(alices_recording.duration) in html  # 0:05:00
    assert "still recording or interrupted" in html
