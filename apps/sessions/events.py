"""Session changes and start progress, published on the channel layer for open pages."""

from __future__ import annotations

import hashlib
import logging

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def group_name(session_id) -> str:
    return f"session-{session_id}"


def user_group(user_id) -> str:
    return f"user-{user_id}"


def student_group(user_id) -> str:
    """Pages that follow one student's sessions and progress (an instructor's class view)."""
    return f"student-{user_id}"


def login_group(session_key: str) -> str:
    """One login (a browser's Django session); the key itself never leaves the server."""
    return "login-" + hashlib.sha256(session_key.encode()).hexdigest()[:32]


def access_groups(user, login_session, session_id) -> list[str]:
    """The groups through which an open socket hears that its access ended."""
    groups = [user_group(user.pk), group_name(session_id)]
    key = getattr(login_session, "session_key", None)
    if key:
        groups.append(login_group(key))
    return groups


async def access_revoked(group: str, why: str) -> None:
    """Close every socket in ``group`` (a login that ended, a user deactivated)."""
    await _send_group(group, {"type": "access.revoked", "why": why})


async def access_changed(group: str) -> None:
    """Every socket in ``group`` checks again whether its user may still be there."""
    await _send_group(group, {"type": "access.changed"})


async def session_changed(session_id) -> None:
    await _send(session_id, {"type": "session.changed"})
    owner_id = await _owner_of(session_id)
    if owner_id is not None:
        await student_activity(owner_id)


async def student_activity(user_id) -> None:
    """A student's sessions or passed steps changed: class views that show them refresh."""
    await _send_group(student_group(user_id), {"type": "student.activity", "student": user_id})


async def marker(session_id, label: str) -> None:
    """Something worth a mark in the session's terminal recordings (a check's result)."""
    await _send(session_id, {"type": "session.marker", "label": label})


@database_sync_to_async
def _owner_of(session_id):
    from apps.sessions.models import LabSession

    return LabSession.objects.filter(pk=session_id).values_list("owner_id", flat=True).first()


async def progress(session_id, percent: int, message: str) -> None:
    await _send(session_id, {"type": "session.progress", "percent": percent, "message": message})


async def _send(session_id, event: dict) -> None:
    await _send_group(group_name(session_id), event)


async def _send_group(group: str, event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(group, event)
    except Exception:  # a page that misses an event still polls; never fail a start over it
        log.warning("could not publish %s to %s", event["type"], group)
