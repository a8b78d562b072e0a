"""The page from which an instructor watches one student's terminal (with consent)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from apps.accounts.roles import is_admin
from apps.courses.models import LabKind
from apps.sessions.models import LabSession
from apps.teaching import watching
from apps.teaching.models import Classroom


@login_required
def watch(request, pk: int, session_id):
    classroom = get_object_or_404(Classroom, pk=pk)
    if not (is_admin(request.user) or classroom.instructors.filter(pk=request.user.pk).exists()):
        raise PermissionDenied
    session = (
        LabSession.objects.select_related("owner", "lab__module__course")
        .filter(pk=session_id, owner__classrooms=classroom)
        .first()
    )
    if session is None or not watching.can_watch(request.user, session):
        raise Http404
    tabs = 1 if session.lab.kind == LabKind.VM else settings.LABSITE_MAX_TABS
    return render(
        request,
        "teaching/watch.html",
        {
            "classroom": classroom,
            "session": session,
            "student": session.owner,
            "lab": session.lab,
            "tabs": range(1, tabs + 1),
            "watch_url": f"/ws/sessions/{session.pk}/watch/",
        },
    )
