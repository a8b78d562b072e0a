"""Recordings' pages: my (or my classes') recordings, one session's segments, the player,
and the cast file itself, behind the same check as the player (never a public static file)."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render

from apps.recordings import files
from apps.recordings.access import recording_for, session_for, visible_recordings

PER_PAGE = 50
#: The player's speed choices; strings, so no locale formats them.
SPEEDS = ["0.5", "1", "1.5", "2", "3", "4"]


@login_required
def recording_list(request):
    rows = visible_recordings(request.user).order_by("-started_at")
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "recordings": page.object_list,
        "recording_days": settings.LABSITE_RECORDING_DAYS,
    }
    return render(request, "recordings/list.html", context)


@login_required
def session_recordings(request, session_id):
    session = session_for(request.user, session_id)
    recordings = session.recordings.order_by("started_at", "tab")
    return render(
        request, "recordings/session.html", {"session": session, "recordings": recordings}
    )


@login_required
def play(request, pk: int):
    recording = recording_for(request.user, pk)
    context = {"recording": recording, "session": recording.session, "speeds": SPEEDS}
    return render(request, "recordings/play.html", context)


@login_required
async def cast(request, pk: int):
    """Async, so a long recording streams from the disk without holding a worker thread."""
    user = await request.auser()
    recording = await database_sync_to_async(recording_for)(user, pk)
    try:
        size = await files.size_of(recording.file_path)
    except FileNotFoundError:
        raise Http404 from None
    response = StreamingHttpResponse(
        files.read_chunks(recording.file_path, size), content_type="application/x-asciicast"
    )
    response["Content-Length"] = str(size)
    # A segment still being recorded grows: always ask again; never kept by shared caches.
    response["Cache-Control"] = "private, no-cache"
    return response
