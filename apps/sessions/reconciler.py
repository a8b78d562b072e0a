"""One loop that makes the engines match the database.

Each pass: stop what ran past its time limit or sat idle, hand every start and stop that
nobody holds (or whose worker's lease lapsed) to a worker, and for each engine, in one
listing: adopt sandboxes of live sessions, remove sandboxes the database does not know
(orphans), end sessions whose sandbox vanished or stopped by itself, and stop sandboxes
that wrote more to their disk than their lab allows. The pass never waits for a start or
a stop to finish: it hands them to tasks, so a VM boot never delays anyone's time limit.
A host that does not answer never ends a session; only an engine that says so does.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from apps.hosts.models import Health, Host
from apps.sessions import events, load_samples, runner, sandbox, services
from apps.sessions.engines import get_backend
from apps.sessions.models import ACTIVE_STATES, EndReason, LabSession, State, lease_free
from provisioning.base import HostUnavailable, Sandbox, SandboxStatus

log = logging.getLogger(__name__)
#: A request the web process did not pick up within this time is started by the loop.
PICKUP_GRACE = timedelta(seconds=5)


#: Periodic chores of other apps (pruning old recordings), registered in their AppConfig.ready
#: so that sessions imports none of them. Each must be cheap when not due and never raise.
HOUSEKEEPING: list[Callable[[], Awaitable[None]]] = []

#: Other apps that keep sandboxes of their own on the engines (the warm pools) see each
#: listing of an engine: ``(key, listing, listed_at)`` → the session ids in it that are
#: theirs, which are then not orphans. They are asked before the sessions are, so a
#: sandbox handed from a pool to a session in between is found by one or the other.
LISTING_OBSERVERS: list[Callable[[str, list[Sandbox], object], Awaitable[set[str]]]] = []


class Reconciler:
    def __init__(self, backend_keys: list[str] | None = None) -> None:
        #: Only these keys (``reconcile --backend``); otherwise the configured engines and
        #: every host of every pool.
        self.only_keys = backend_keys
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
        """One pass. Starts and stops it hands out run on in the background
        (``runner.wait_idle()`` waits for them)."""
        await self.apply_time_limits()
        await self.act_on_pending()
        hosts_by_key = await _hosts_by_key(self.only_keys)
        keys = list(dict.fromkeys([*self.backend_keys, *hosts_by_key]))
        await asyncio.gather(*(self.sync_engine(key, hosts_by_key.get(key, [])) for key in keys))
        await runner.start_queued()
        await load_samples.sample_if_due()
        for chore in HOUSEKEEPING:
            await chore()

    async def apply_time_limits(self) -> None:
        now = timezone.now()
        idle_since = now - timedelta(minutes=settings.LABSITE_IDLE_MINUTES)
        for session, reason in await _due_for_stop(now, idle_since):
            await self.stop(session, reason)

    async def stop(self, session: LabSession, reason: EndReason, message: str = "") -> None:
        if await database_sync_to_async(services.request_stop)(session, reason, message):
            log.info("session %s: %s", session.pk, reason.label)
            await events.session_changed(session.pk)
            runner.kick(session.pk, State.STOPPING)

    async def act_on_pending(self) -> None:
        for session_id, state in await _unclaimed(timezone.now()):
            runner.kick(session_id, state)

    async def sync_engine(self, key: str, hosts: list[int] | None = None) -> None:
        """One listing of engine ``key`` (whose pool hosts are ``hosts``), and what follows
        from it: adoption, orphans, ended sandboxes, disk limits, the hosts' health."""
        hosts = hosts or []
        try:
            backend = get_backend(key)
        except Exception as exc:
            log.exception("backend %s cannot be loaded", key)
            await self.host_down(key, hosts, f"{type(exc).__name__}: {exc}")
            return
        try:
            found = await backend.list_sandboxes()
        except HostUnavailable as exc:
            log.warning("%s: %s (%s); its sessions are left as they are", key, exc, exc.detail)
            await self.host_down(key, hosts, f"{exc} {exc.detail}".strip())
            return
        except Exception as exc:
            log.exception("%s: listing sandboxes failed", key)
            await self.host_down(key, hosts, f"{type(exc).__name__}: {exc}")
            return
        listed_at = timezone.now()
        runner.spawn(self.record_host(key, backend, listed_at, hosts))
        by_session = {s.session_id: s for s in found if s.session_id}
        kept: set[str] = set()
        for observe in LISTING_OBSERVERS:
            kept |= await observe(key, found, listed_at)
        live = kept | await _live_sessions(key, list(by_session))
        for box in found:
            if box.session_id not in live:
                # Also a sandbox with this site's label but no session label.
                runner.spawn(self.remove_orphan(backend, box))
        for session in await _running_sessions(key, started_before=listed_at):
            box = by_session.get(str(session.pk))
            if box is None:
                # Not in the listing: ask once more, by name, before saying it is gone.
                runner.spawn(sandbox.ended(session))
            elif box.status == SandboxStatus.EXITED:
                await sandbox.note_gone(session.pk, SandboxStatus.EXITED, box.exit_detail)
            elif _over_disk(box, session):
                await self.stop_over_disk(session, box)

    async def record_host(self, key: str, backend, seen_at, hosts: list[int]) -> None:
        """Keep the admin's view of the host current: up, last seen, and its facts."""
        facts = {}
        try:
            facts = await backend.host_facts()
        except Exception:
            log.warning("%s: could not read host facts", key, exc_info=True)
        await _save_host(key, hosts, seen_at, facts)

    async def host_down(self, key: str, hosts: list[int], error: str) -> None:
        """A host that does not answer: said on the admin's page at once; its sessions are
        ended only once it has stayed down for the grace period (an engine restarting is
        not a loss), their students told why; the next Start lands elsewhere."""
        lost = await _mark_down(key, hosts, error, timezone.now())
        for session_id in lost:
            log.warning("session %s: its host %s stayed down; ended", session_id, key)
            await events.session_changed(session_id)

    async def remove_orphan(self, backend, box: Sandbox) -> None:
        log.info("removing orphan sandbox %s (session %s)", box.name, box.session_id or "-")
        try:
            await backend.stop(box)
        except Exception:
            log.exception("could not remove orphan %s", box.name)

    async def stop_over_disk(self, session: LabSession, box: Sandbox) -> None:
        used = (box.disk_bytes or 0) // 2**20
        log.warning("session %s wrote %d MiB (limit %d)", session.pk, used, session.lab.disk_mib)
        await self.stop(session, EndReason.DISK, services.disk_message(used, session.lab.disk_mib))


def _over_disk(box: Sandbox, session: LabSession) -> bool:
    return box.disk_bytes is not None and box.disk_bytes > session.lab.disk_mib * 2**20


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
def _unclaimed(now) -> list[tuple[str, State]]:
    """Starts and stops that nobody holds a live lease on."""
    requested = LabSession.objects.filter(state=State.REQUESTED, created_at__lte=now - PICKUP_GRACE)
    held_by_nobody = LabSession.objects.filter(
        lease_free(now), state__in=[State.STARTING, State.STOPPING]
    )
    rows = [(pk, State.REQUESTED) for pk in requested.values_list("pk", flat=True)]
    rows += list(held_by_nobody.values_list("pk", "state"))
    return rows


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
def _hosts_by_key(only: list[str] | None) -> dict[str, list[int]]:
    """Every pool host's backend key -> its rows (registering the ones with endpoints)."""
    from apps.sessions.engines import register_host

    found: dict[str, list[int]] = {}
    for host in Host.objects.all():
        key = register_host(host)
        if only is None or key in only:
            found.setdefault(key, []).append(host.pk)
    return found


def _hosts_of(key: str, hosts: list[int]):
    return Host.objects.filter(pk__in=hosts) if hosts else Host.objects.filter(backend=key)


@database_sync_to_async
def _save_host(backend_key: str, hosts: list[int], seen_at, facts: dict) -> None:
    for host in _hosts_of(backend_key, hosts):
        host.last_seen_at = host.checked_at = seen_at
        host.health, host.last_error, host.down_since = Health.UP, "", None
        if facts:
            host.facts = facts
        host.save(
            update_fields=["last_seen_at", "checked_at", "health", "last_error", "down_since",
                           "facts"]
        )  # fmt: skip


@database_sync_to_async
def _mark_down(backend_key: str, hosts: list[int], error: str, now) -> list:
    """Mark the hosts down; end the sessions of those down past the grace period."""
    grace = timedelta(seconds=settings.LABSITE_HOST_GRACE_SECONDS)
    lost = []
    for host in _hosts_of(backend_key, hosts):
        host.health, host.last_error, host.checked_at = Health.DOWN, error[:2000], now
        host.down_since = host.down_since or now
        host.save(update_fields=["health", "last_error", "checked_at", "down_since"])
        if now - host.down_since < grace:
            continue
        gone = LabSession.objects.filter(host=host, state__in=ACTIVE_STATES)
        ids = list(gone.values_list("pk", flat=True))
        gone.update(
            state=State.FAILED,
            end_reason=EndReason.HOST_DOWN,
            failure_message=services.host_down_message(),
            ended_at=now,
            lease_owner="",
            lease_expires_at=None,
            updated_at=now,
        )
        lost += ids
    return lost
