"""Session changes and start progress, published on the channel layer for open pages."""

from __future__ import annotations

import logging

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def group_name(session_id) -> str:
    return f"session-{session_id}"


async def session_changed(session_id) -> None:
    await _send(session_id, {"type": "session.changed"})


async def progress(session_id, percent: int, message: str) -> None:
    await _send(session_id, {"type": "session.progress", "percent": percent, "message": message})


async def _send(session_id, event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(group_name(session_id), event)
    except Exception:  # a page that misses an event still polls; never fail a start over it
        log.warning("could not publish %s for session %s", event["type"], session_id)
