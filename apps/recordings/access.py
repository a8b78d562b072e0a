"""Who may see which recordings: exactly who may see the session (sessions.services.can_view):
its owner, an instructor of one of the owner's classes, an admin."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import Http404

from apps.accounts.roles import is_admin, is_instructor
from apps.recordings.models import Recording
from apps.sessions import services
from apps.sessions.models import LabSession


def visible_recordings(user) -> QuerySet[Recording]:
    """The recordings ``user`` may replay (the list page); can_view's rule as a query."""
    rows = Recording.objects.select_related("session__owner", "session__lab")
    if not user.is_authenticated:
        return rows.none()
    if is_admin(user):
        return rows
    if is_instructor(user):
        taught = get_user_model().objects.filter(classrooms__instructors=user).values("pk")
        return rows.filter(Q(session__owner__in=taught) | Q(session__owner=user))
    return rows.filter(session__owner=user)


def recording_for(user, pk: int) -> Recording:
    """The recording, or 404 for anyone who may not see it (as for one that does not exist)."""
    recording = (
        Recording.objects.select_related("session__owner", "session__lab__module")
        .filter(pk=pk)
        .first()
    )
    if recording is None or not services.can_view(user, recording.session):
        raise Http404
    return recording


def session_for(user, session_id) -> LabSession:
    """The session whose recordings are listed, or 404 like recording_for."""
    session = LabSession.objects.select_related("owner", "lab").filter(pk=session_id).first()
    if session is None or not services.can_view(user, session):
        raise Http404
    return session
