"""One loop that makes the engines match the database.

Each pass: start what was requested and not picked up, finish stops, stop what ran past
its time limit or sat idle, adopt sandboxes that belong to live sessions, remove
sandboxes the database does not know (orphans), and mark sessions whose sandbox vanished.
A single failed probe of a host never ends a session: only an engine that answers
"no such sandbox" does.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.hosts.models import Host
from apps.sessions import events, runner
from apps.sessions.engines import get_backend
from apps.sessions.models import ACTIVE_STATES, EndReason, LabSession, State
from apps.sessions.services import request_stop
from apps.sessions.specs import sandbox_of
from provisioning.base import HostUnavailable, Sandbox, SandboxStatus

log = logging.getLogger(__name__)
#: A request the web process did not pick up within this time is started by the loop.
PICKUP_GRACE = timedelta(seconds=5)
#: A start that takes longer than this died with its process; it is retried.
START_TIMEOUT = timedelta(minutes=10)


class Reconciler:
    def __init__(self, backend_keys: list[str] | None = None) -> None:
        self.backend_keys = backend_keys or list(settings.LABSITE_BACKENDS)

    async def run_forever(self, interval: float | None = None) -> None:
        interval = interval or settings.LABSITE_RECONCILE_SECONDS
        log.info("reconciler running every %ss for %s", interval, ", ".join(self.backend_keys))
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("reconcile pass failed; trying again next tick")
            await asyncio.sleep(interval)

    async def run_once(self) -> None:
        await self.apply_time_limits()
        await self.act_on_pending()
        for key in self.backend_keys:
            await self.sync_engine(key)
        await runner.wait_idle()

    async def apply_time_limits(self) -> None:
        now = timezone.now()
        idle_since = now - timedelta(minutes=settings.LABSITE_IDLE_MINUTES)
        for session, reason in await _due_for_stop(now, idle_since):
            if await database_sync_to_async(request_stop)(session, reason):
                log.info("session %s: %s", session.pk, reason.label)
                await events.session_changed(session.pk)

    async def act_on_pending(self) -> None:
        for session_id, state in await _pending(timezone.now()):
            runner.kick(session_id, state)

    async def sync_engine(self, key: str) -> None:
        try:
            backend = get_backend(key)
        except Exception:
            log.exception("backend %s cannot be loaded", key)
            return
        try:
            found = await backend.list_sandboxes()
        except HostUnavailable as exc:
            log.warning("%s: %s; its sessions are left as they are", key, exc)
            return
        except Exception:
            log.exception("%s: listing sandboxes failed", key)
            return
        listed_at = timezone.now()
        await self.record_host(key, backend, listed_at)
        by_session = {s.session_id: s for s in found if s.session_id}
        live = await _live_sessions(key, list(by_session))
        for session_id, sandbox in by_session.items():
            if session_id not in live:
                await self.remove_orphan(backend, sandbox)
        for session in await _running_sessions(key, started_before=listed_at):
            if str(session.pk) not in by_session:
                await self.confirm_lost(backend, session)

    async def record_host(self, key: str, backend, seen_at) -> None:
        """Keep the admin's view of the host current: last seen, and its facts."""
        facts = {}
        if hasattr(backend, "host_facts"):
            try:
                facts = await backend.host_facts()
            except Exception:
                log.warning("%s: could not read host facts", key, exc_info=True)
        await _save_host(key, seen_at, facts)

    async def remove_orphan(self, backend, sandbox: Sandbox) -> None:
        log.info("removing orphan sandbox %s (session %s)", sandbox.name, sandbox.session_id)
        try:
            await backend.stop(sandbox)
        except Exception:
            log.exception("could not remove orphan %s", sandbox.name)

    async def confirm_lost(self, backend, session: LabSession) -> None:
        try:
            status = await backend.status(sandbox_of(session))
        except HostUnavailable:
            return
        if status in (SandboxStatus.MISSING, SandboxStatus.EXITED):
            log.warning("session %s lost its sandbox (%s)", session.pk, status)
            await _mark_lost(session.pk)
            if status == SandboxStatus.EXITED:
                await backend.stop(sandbox_of(session))
            await events.session_changed(session.pk)


@database_sync_to_async
def _due_for_stop(now, idle_since) -> list[tuple[LabSession, EndReason]]:
    running = LabSession.objects.filter(state=State.RUNNING)
    due = [(s, EndReason.TIME_LIMIT) for s in running.filter(expires_at__lte=now)]
    due += [
        (s, EndReason.IDLE)
        for s in running.filter(expires_at__gt=now, last_activity_at__lte=idle_since)
    ]
    return due


@database_sync_to_async
def _pending(now) -> list[tuple[str, State]]:
    stale_start = LabSession.objects.filter(
        state=State.STARTING, updated_at__lte=now - START_TIMEOUT
    )
    # A start whose process died: hand it back to the queue.
    stale_start.update(state=State.REQUESTED, updated_at=now)
    rows = LabSession.objects.filter(state=State.REQUESTED, created_at__lte=now - PICKUP_GRACE)
    stopping = LabSession.objects.filter(state=State.STOPPING)
    return [(r.pk, State.REQUESTED) for r in rows] + [(r.pk, State.STOPPING) for r in stopping]


@database_sync_to_async
def _live_sessions(backend_key: str, session_ids: list[str]) -> set[str]:
    valid = []
    for raw in session_ids:
        try:
            valid.append(uuid.UUID(raw))
        except ValueError:
            continue
    rows = LabSession.objects.filter(pk__in=valid, backend=backend_key, state__in=ACTIVE_STATES)
    return {str(pk) for pk in rows.values_list("pk", flat=True)}


@database_sync_to_async
def _running_sessions(backend_key: str, started_before) -> list[LabSession]:
    return list(
        LabSession.objects.select_related("lab__module", "owner").filter(
            backend=backend_key, state=State.RUNNING, started_at__lt=started_before
        )
    )


@database_sync_to_async
def _save_host(backend_key: str, seen_at, facts: dict) -> None:
    for host in Host.objects.filter(backend=backend_key):
        host.last_seen_at = seen_at
        if facts:
            host.facts = facts
        host.save(update_fields=["last_seen_at", "facts"])


@database_sync_to_async
def _mark_lost(session_id) -> None:
    LabSession.objects.filter(pk=session_id, state=State.RUNNING).update(
        state=State.FAILED,
        end_reason=EndReason.LOST,
        failure_message=_(
            "Your lab environment disappeared (the server may have restarted). "
            "Start the lab again to get a fresh one."
        ),
        ended_at=timezone.now(),
        updated_at=timezone.now(),
    )
