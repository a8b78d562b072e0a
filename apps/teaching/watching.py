"""Watching a student's terminal, with consent: who may, and the record of who did.

The database is the one source of truth for who watches and who may type; sockets hear
that it changed (``watch.changed`` on the session's group) and read it again. Nothing
here talks to a sandbox: the student's own terminal socket forwards what the watcher
sees, and an allowed watcher's keys, so a watch never opens a terminal of its own.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.roles import is_admin, is_instructor
from apps.audit.log import record
from apps.audit.models import Action
from apps.sessions.models import LabSession
from apps.teaching.models import Watch, WatchEvent

logger = logging.getLogger(__name__)

#: A watch not renewed for this long is over (its web process died with it).
WATCH_STALE = timedelta(seconds=60)
#: How often a watcher's socket renews its watch.
HEARTBEAT_SECONDS = 20


def can_watch(user, session: LabSession) -> bool:
    """An instructor of one of the owner's classes, or an admin; never the owner."""
    if not user.is_authenticated or not user.is_active or session.owner_id == user.pk:
        return False
    if is_admin(user):
        return True
    return is_instructor(user) and session.owner.classrooms.filter(instructors=user).exists()


def _active(now=None) -> Q:
    now = now or timezone.now()
    return Q(ended_at__isnull=True, last_seen_at__gte=now - WATCH_STALE)


def begin(user, session: LabSession, tab: int) -> Watch:
    with transaction.atomic():
        watch = Watch.objects.create(session=session, watcher=user, tab=tab)
        WatchEvent.objects.create(watch=watch, kind=WatchEvent.Kind.STARTED)
        record(user, Action.WATCH_STARTED, session=session, tab=tab, watch=watch.pk)
    return watch


def heartbeat(watch_id: int) -> bool:
    """Renew a watch; False if it has ended (so the watcher's socket should close)."""
    return bool(
        Watch.objects.filter(pk=watch_id, ended_at__isnull=True).update(last_seen_at=timezone.now())
    )


def end(watch_id: int) -> None:
    with transaction.atomic():
        if Watch.objects.filter(pk=watch_id, ended_at__isnull=True).update(
            ended_at=timezone.now(), asking_since=None, may_type_since=None
        ):
            WatchEvent.objects.create(watch_id=watch_id, kind=WatchEvent.Kind.ENDED)
            _record_watch(watch_id, Action.WATCH_ENDED)


def _record_watch(watch_id: int, action: Action, by=None) -> None:
    """The audit entry of a change of a watch: done by ``by`` (the student answering),
    or by its watcher; about the watched session and student."""
    try:
        with transaction.atomic():  # a savepoint: a failure here leaves the caller's intact
            watch = (
                Watch.objects.select_related("watcher", "session__owner", "session__lab")
                .filter(pk=watch_id)
                .first()
            )
    except DatabaseError:
        logger.exception("audit: could not read watch %s", watch_id)
        return
    if watch is not None:
        record(by or watch.watcher, action, session=watch.session, tab=watch.tab, watch=watch_id,
               watcher=watch.watcher.get_username())  # fmt: skip


def ask_to_type(watch_id: int) -> bool:
    """The watcher asks to type; the student is asked once until they answer."""
    with transaction.atomic():
        asked = (
            Watch.objects.filter(_active(), pk=watch_id, asking_since__isnull=True)
            .filter(may_type_since__isnull=True)
            .update(asking_since=timezone.now())
        )
        if asked:
            WatchEvent.objects.create(watch_id=watch_id, kind=WatchEvent.Kind.ASKED)
            _record_watch(watch_id, Action.WATCH_ASKED)
    return bool(asked)


def answer(student, session_id, watch_id: int, *, allow: bool) -> bool:
    """The session's owner allows or refuses a watcher's request to type."""
    now = timezone.now()
    rows = Watch.objects.filter(
        _active(now),
        pk=watch_id,
        session_id=session_id,
        session__owner=student,
        asking_since__isnull=False,
    )
    with transaction.atomic():
        changed = rows.update(asking_since=None, may_type_since=now if allow else None)
        if changed:
            kind = WatchEvent.Kind.ALLOWED if allow else WatchEvent.Kind.REFUSED
            WatchEvent.objects.create(watch_id=watch_id, kind=kind)
            action = Action.WATCH_ALLOWED if allow else Action.WATCH_REFUSED
            _record_watch(watch_id, action, by=student)
    return bool(changed)


def take_back(student, session_id, watch_id: int) -> bool:
    """The owner takes the keyboard back: the watcher only watches again."""
    rows = Watch.objects.filter(
        pk=watch_id, session_id=session_id, session__owner=student, may_type_since__isnull=False
    )
    with transaction.atomic():
        changed = rows.update(may_type_since=None)
        if changed:
            WatchEvent.objects.create(watch_id=watch_id, kind=WatchEvent.Kind.REVOKED)
            _record_watch(watch_id, Action.WATCH_TAKEN_BACK, by=student)
    return bool(changed)


def watchers(session_id) -> list[dict]:
    """Who watches the session now, as the student's page shows it."""
    rows = (
        Watch.objects.filter(_active(), session_id=session_id)
        .select_related("watcher")
        .order_by("started_at")
    )
    return [
        {
            "id": w.pk,
            "name": w.watcher.get_full_name() or w.watcher.username,
            "tab": w.tab,
            "asking": w.asking_since is not None,
            "typing": w.may_type_since is not None,
        }
        for w in rows
    ]


def tab_watchers(session_id, tab: int) -> tuple[bool, frozenset[int]]:
    """Whether anyone watches ``tab`` of the session, and which watches may type in it."""
    rows = list(
        Watch.objects.filter(_active(), session_id=session_id, tab=tab).values_list(
            "pk", "may_type_since"
        )
    )
    return bool(rows), frozenset(pk for pk, since in rows if since is not None)


def state(watch_id: int) -> dict | None:
    """A watch as its watcher's page shows it; None once it has ended."""
    watch = Watch.objects.filter(_active(), pk=watch_id).first()
    if watch is None:
        return None
    return {"asking": watch.asking_since is not None, "typing": watch.may_type_since is not None}
