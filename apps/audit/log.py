"""Writing the audit log: ``record`` (sync) and ``arecord`` (async), for every app.

Both never raise into the caller: an action that happened is not undone because its
record could not be written (the error goes to the log instead). The entry is written
inside a savepoint of the caller's transaction, if there is one, so it is rolled back
with the action, and a failed write leaves the caller's transaction usable.

This module imports no other app: sessions and hosts call it, and pass their rows (or
their ids and names), which are read by attribute only.
"""

from __future__ import annotations

import logging
import uuid

from channels.db import database_sync_to_async
from django.db import transaction

logger = logging.getLogger(__name__)

#: What ``target`` and ``host_name`` hold at most (the model's max_length).
_TARGET_MAX = 300
_HOST_MAX = 100
_NAME_MAX = 150


def record(actor, action, *, session=None, host=None, target: str = "", **detail) -> None:
    """Note that ``actor`` (a user; None or a name such as "reconciler" for the site itself)
    did ``action`` (an ``Action``, or its value) to ``session`` (a LabSession or its id),
    on ``host`` (a Host or its name), to ``target`` (what was acted on, as words; for a
    session row, its owner and lab when not given); ``detail`` must be JSON-able."""
    try:
        from apps.audit.models import AuditEntry

        user, name = _actor(actor)
        session_id = _session_id(session)
        host_name = _host_name(host)
        if session is not None and not isinstance(session, str | uuid.UUID):
            host_name, target = _from_session(session, host_name, target)
        with transaction.atomic():
            AuditEntry.objects.create(
                actor=user,
                actor_name=name[:_NAME_MAX],
                action=str(getattr(action, "value", action)),
                session_id=session_id,
                host_name=host_name[:_HOST_MAX],
                target=str(target)[:_TARGET_MAX],
                detail=detail,
            )
    except Exception:
        logger.exception("audit: could not record %s by %r", action, actor)


async def arecord(actor, action, *, session=None, host=None, target: str = "", **detail) -> None:
    """``record`` from async code (the database call runs in the sync thread pool)."""
    try:
        await database_sync_to_async(record)(
            actor, action, session=session, host=host, target=target, **detail
        )
    except Exception:
        logger.exception("audit: could not record %s by %r", action, actor)


def _actor(actor):
    if actor is None:
        return None, ""
    if isinstance(actor, str):
        return None, actor
    if not getattr(actor, "is_authenticated", False) or getattr(actor, "pk", None) is None:
        return None, ""
    return actor, actor.get_username()


def _session_id(session) -> uuid.UUID | None:
    if session is None:
        return None
    if isinstance(session, uuid.UUID):
        return session
    if isinstance(session, str):
        return uuid.UUID(session)
    return session.pk


def _host_name(host) -> str:
    if host is None:
        return ""
    if isinstance(host, str):
        return host
    return str(getattr(host, "name", "") or "")


def _from_session(session, host_name: str, target) -> tuple[str, str]:
    """The host and the words "owner / lab" of a session row, where the caller gave none.
    A failure here costs only these two, never the entry."""
    try:
        if not host_name and getattr(session, "host_id", None):
            host_name = _host_name(session.host)
        if not target:
            owner = session.owner.get_username() if getattr(session, "owner_id", None) else ""
            lab = session.lab.title if getattr(session, "lab_id", None) else ""
            target = " / ".join(part for part in (owner, lab) if part)
    except Exception:
        logger.warning("audit: could not describe session %s", session.pk, exc_info=True)
    return host_name, str(target or "")
