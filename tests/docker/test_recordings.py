"""A recording replays what was typed, with its markers: a real container terminal, through
the real ASGI app, recorded to disk and served back to the owner only."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.test import AsyncClient

from apps.recordings.models import Recording
from tests.docker.conftest import Screen, connect_terminal, start_lab

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def recordings_on(settings, tmp_path):
    settings.LABSITE_RECORDINGS = True
    settings.LABSITE_RECORDINGS_DIR = tmp_path / "recordings"


async def client_for(user) -> AsyncClient:
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return client


async def until(predicate, seconds: float = 10):
    for _ in range(int(seconds / 0.1)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


@database_sync_to_async
def recording_of(session) -> Recording:
    return Recording.objects.get(session=session)


async def test_a_recording_replays_what_was_typed_with_its_markers(alice, bob, hello_lab):
    session = await start_lab(alice, hello_lab)
    screen = Screen(await connect_terminal(session, alice, cols=90, rows=28))
    await screen.until(b"# ")
    # tmux redraws the screen, so a line of output need not follow a newline: wait for
    # something only the shell can print (the arithmetic), not for the typed text.
    await screen.type("echo hello-recording; echo done-$((6*7))\r")
    await screen.until(b"done-42")
    await screen.type(
        "mkdir -p /root/answers && echo hi > /root/answers/hello; echo answered-$((40+3))\r"
    )
    await screen.until(b"answered-43")

    client = await client_for(alice)
    result = (await client.post(f"/api/sessions/{session.pk}/steps/1/check/")).json()
    assert result["passed"] is True
    recording = await recording_of(session)

    async def marker_on_disk() -> bool:
        path = recording.file_path
        return path.exists() and '"m"' in path.read_text(encoding="utf-8")

    await until(marker_on_disk)  # on disk while the terminal is still open
    await screen.communicator.disconnect(timeout=10)

    async def closed() -> bool:
        return (await recording_of(session)).ended_at is not None

    await until(closed)
    recording = await recording_of(session)
    lines = recording.file_path.read_text(encoding="utf-8").splitlines()
    header, events = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    assert header["version"] == 2 and (header["width"], header["height"]) == (90, 28)
    output = "".join(data for _t, code, data in events if code == "o")
    # What was typed, and what the shell printed back.
    assert "echo hello-recording" in output and output.count("hello-recording") >= 2
    markers = [(t, data) for t, code, data in events if code == "m"]
    assert len(markers) == 1 and markers[0][1].startswith("step 1 passed")
    typed_at = next(t for t, code, data in events if code == "o" and "hello-recording" in data)
    assert typed_at <= markers[0][0]
    assert recording.markers == 1 and recording.bytes == recording.file_path.stat().st_size

    page = await client.get(f"/recordings/{recording.pk}/")
    cast = await client.get(f"/recordings/{recording.pk}/cast")
    assert page.status_code == 200 and cast.status_code == 200
    served = b"".join([chunk async for chunk in cast.streaming_content])
    assert b"hello-recording" in served and b"step 1 passed" in served

    other = await client_for(bob)
    assert (await other.get(f"/recordings/{recording.pk}/")).status_code == 404
    assert (await other.get(f"/recordings/{recording.pk}/cast")).status_code == 404
