"""Session changes and start progress, published on the channel layer for open pages."""

from __future__ import annotations

import hashlib
import logging

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def group_name(session_id) -> str:
    return f"session-{session_id}"


def user_group(user_id) -> str:
    return f"user-{user_id}"


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
