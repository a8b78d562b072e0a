"""The engine side of a session: start it, stop it, under a lease.

A worker (a web process or the reconciler) *claims* a row with a conditional UPDATE that
names it as the lease's owner until a time it renews while it works. Another worker takes
a row over only once its lease has lapsed, so a start is never run twice at once and a
worker killed half-way leaves a row that is taken over within ``LEASE`` seconds. The
sandbox itself is reached only through ``apps.sessions.sandbox``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from channels.db import database_sync_to_async
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.log import arecord
from apps.sessions import events, sandbox, services
from apps.sessions.models import EndReason, LabSession, State, lease_free
from labsite.prompt_db import lease_db
from provisioning.base import HostUnavailable, Progress, SandboxError

log = logging.getLogger(__name__)
_tasks: set[asyncio.Task] = set()
#: Names this process in the leases it holds.
WORKER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
#: How long a claim holds without renewal; renewed every RENEW_SECONDS while work goes on.
LEASE = timedelta(seconds=15)
RENEW_SECONDS = LEASE.total_seconds() / 3
#: Progress is written to the database at most this often (it is also sent live).
PROGRESS_WRITE_INTERVAL = 1.0


def kick(session_id, state: State) -> None:
    """Act on a session now, in the background of the running event loop."""
    action = provision if state in (State.REQUESTED, State.STARTING) else teardown
    # A fresh context: the task outlives the request, so it must not inherit the request's
    # thread-sensitive executor (asgiref), which closes with the response.
    spawn(action(session_id), context=contextvars.Context())


async def stop_by(user, session: LabSession, reason: EndReason) -> bool:
    """``user`` stops ``session``: marked stopping, handed to the runner, audited. False
    when it was no longer live (nothing to do)."""
    if not await database_sync_to_async(services.request_stop)(session, reason):
        return False
    kick(session.pk, State.STOPPING)
    await arecord(user, "session_stopped", session=session, by=str(reason.value))
    return True


def spawn(coro: Awaitable, context: contextvars.Context | None = None) -> asyncio.Task:
    """Run ``coro`` in the background, keeping a reference until it ends (see wait_idle)."""
    task = asyncio.get_running_loop().create_task(coro, context=context)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


async def wait_idle() -> None:
    """Wait for every kicked task of this event loop (tests and shutdown)."""
    loop = asyncio.get_running_loop()
    while mine := [task for task in _tasks if task.get_loop() is loop]:
        await asyncio.gather(*mine, return_exceptions=True)


# -- claims --------------------------------------------------------------------------------


@database_sync_to_async
def _claim(session_id, from_states: tuple[State, ...], to_state: State) -> LabSession | None:
    """Take the row if it is in ``from_states`` and nobody holds a live lease on it."""
    now = timezone.now()
    fields = {"state": to_state, "lease_owner": WORKER, "lease_expires_at": now + LEASE}
    if to_state == State.STARTING:
        fields |= {"progress_percent": 0, "progress_message": ""}
    rows = LabSession.objects.filter(pk=session_id, state__in=from_states).filter(lease_free(now))
    if to_state == State.STARTING:
        rows = rows.exclude(backend="")  # waiting in the queue for a host: not yet
    claimed = rows.update(updated_at=now, **fields)
    if not claimed:
        return None
    return LabSession.objects.select_related("lab__module", "owner", "host").get(pk=session_id)


@lease_db
def _renew(session_id, state: State) -> bool:
    return bool(
        LabSession.objects.filter(pk=session_id, state=state, lease_owner=WORKER).update(
            lease_expires_at=timezone.now() + LEASE
        )
    )


@database_sync_to_async
def _finish(session_id, held: State, **fields) -> bool:
    """Leave state ``held`` for good, if this worker still holds the row in it."""
    now = timezone.now()
    return bool(
        LabSession.objects.filter(pk=session_id, state=held, lease_owner=WORKER).update(
            lease_owner="", lease_expires_at=None, updated_at=now, **fields
        )
    )


@database_sync_to_async
def _update(session_id, only_if: State, **fields) -> bool:
    rows = LabSession.objects.filter(pk=session_id, state=only_if)
    return bool(rows.update(updated_at=timezone.now(), **fields))


async def _hold(work: asyncio.Task, renew: Callable[[], Awaitable[bool]], what: str) -> None:
    """Renew the lease while ``work`` runs; cancel it when a renewal fails (the row left
    its state: a stop during a start), since nobody wants its result any more."""
    while not work.done():
        await asyncio.sleep(RENEW_SECONDS)
        if not work.done() and not await renew():
            log.info("%s: its lease was lost; cancelling its work", what)
            work.cancel()
            return


async def under_lease(coro: Awaitable, renew: Callable[[], Awaitable[bool]], what: str):
    """Await ``coro`` while ``renew()`` keeps a lease alive every RENEW_SECONDS; the work
    is cancelled as soon as a renewal fails (the row was taken away or changed state)."""
    work = asyncio.ensure_future(coro)
    holder = asyncio.ensure_future(_hold(work, renew, what))
    try:
        return await work
    finally:
        holder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holder


async def _under_lease(session_id, state: State, coro: Awaitable):
    return await under_lease(coro, lambda: _renew(session_id, state), f"session {session_id}")


# -- start ---------------------------------------------------------------------------------


async def provision(session_id) -> None:
    session = await _claim(session_id, (State.REQUESTED, State.STARTING), State.STARTING)
    if session is None:
        return  # someone else holds it, or it was stopped before it began
    await events.session_changed(session_id)
    reporter = _ProgressReporter(session_id)
    try:
        box = await _under_lease(session_id, State.STARTING, sandbox.start(session, reporter))
    except asyncio.CancelledError:
        # Stopped during its start: the teardown's stop may have run before the sandbox
        # existed, so remove what the start made.
        await _clean_up_after_start(session)
        if asyncio.current_task().cancelling():
            raise
        return
    except Exception as exc:
        await _fail(session, exc)
        await _clean_up_after_start(session)
        return
    now = timezone.now()
    started = await _finish(
        session_id,
        State.STARTING,
        state=State.RUNNING,
        engine_id=box.engine_id,
        started_at=now,
        last_activity_at=now,
        # A Reset's new sandbox keeps the deadline it was given (services.reset).
        expires_at=session.expires_at or now + session.time_limit(),
        progress_percent=100,
        progress_message="",
    )
    if not started:
        log.info("session %s left its start to another end; cleaning up", session_id)
        await _clean_up_after_start(session)
    else:
        log.info("session %s running (%s)", session_id, box.name)
    await events.session_changed(session_id)


async def _fail(session: LabSession, exc: Exception) -> None:
    if isinstance(exc, HostUnavailable):
        log.warning("session %s: host unavailable during start: %s", session.pk, exc.detail)
        message = _("The lab servers cannot be reached right now. Please try again in a minute.")
    elif isinstance(exc, SandboxError):
        log.warning("session %s failed to start: %s (%s)", session.pk, exc, exc.detail)
        message = _(
            "Your lab environment could not be started (%(reason)s). Please try again; "
            "if it keeps failing, tell your instructor."
        ) % {"reason": _(exc.message)}
    else:
        log.exception("session %s: unexpected error during start", session.pk)
        message = _(
            "Your lab environment could not be started because of an error on our side. "
            "Please try again; if it keeps failing, tell your instructor."
        )
    failed = await _finish(
        session.pk,
        State.STARTING,
        state=State.FAILED,
        end_reason=EndReason.ERROR,
        failure_message=message,
        ended_at=timezone.now(),
    )
    if failed:
        await events.session_changed(session.pk)
        await start_queued()


# -- stop ----------------------------------------------------------------------------------


async def teardown(session_id) -> None:
    session = await _claim(session_id, (State.STOPPING,), State.STOPPING)
    if session is None:
        return
    try:
        await _under_lease(session_id, State.STOPPING, sandbox.stop(session))
    except HostUnavailable:
        # Keep the row STOPPING and let the lease lapse: the reconciler retries.
        log.warning("session %s: host unavailable, the stop will be retried", session_id)
        return
    except Exception:
        log.exception("session %s: stop failed; it will be retried", session_id)
        return
    reason = session.end_reason
    final = State.EXPIRED if reason in (EndReason.TIME_LIMIT, EndReason.IDLE) else State.STOPPED
    if await _finish(session_id, State.STOPPING, state=final, ended_at=timezone.now()):
        await events.session_changed(session_id)
        log.info("session %s %s (%s)", session_id, final, reason)
        await start_queued()  # its place on the host is free now


async def start_queued() -> None:
    """Place waiting sessions where room has freed, start them, and tell the ones still
    waiting their new place in the queue."""
    placed = await database_sync_to_async(services.place_queued)()
    for session in placed:
        log.info("session %s leaves the queue for host %s", session.pk, session.host)
        kick(session.pk, State.REQUESTED)
    if placed:
        for session_id in await database_sync_to_async(_queued_ids)():
            await events.session_changed(session_id)


def _queued_ids() -> list:
    return list(
        LabSession.objects.filter(state=State.REQUESTED, backend="").values_list("pk", flat=True)
    )


@database_sync_to_async
def _started_by_another(session_id) -> bool:
    return (
        LabSession.objects.filter(
            pk=session_id, state=State.STARTING, lease_expires_at__isnull=False
        )
        .exclude(lease_owner=WORKER)
        .exists()
    )


async def _clean_up_after_start(session: LabSession) -> None:
    """Remove what a start that did not finish made, unless another worker has taken the
    start over (this one's lease lapsed): the sandbox's name is now that worker's."""
    if await _started_by_another(session.pk):
        log.info("session %s: another worker holds its start; leaving the sandbox", session.pk)
        return
    await _stop_quietly(session)


async def _stop_quietly(session: LabSession) -> None:
    try:
        await sandbox.stop(session)
    except Exception:
        log.exception("cleanup of session %s failed; the reconciler will retry", session.pk)


class _ProgressReporter:
    """Sends each progress step to the page at once; writes it to the row now and then."""

    def __init__(self, session_id) -> None:
        self.session_id = session_id
        self.last_write = 0.0

    def __call__(self, progress: Progress) -> None:
        spawn(self.publish(progress))

    async def publish(self, progress: Progress) -> None:
        await events.progress(self.session_id, progress.percent, progress.message)
        if time.monotonic() - self.last_write >= PROGRESS_WRITE_INTERVAL:
            self.last_write = time.monotonic()
            await _update(
                self.session_id,
                only_if=State.STARTING,
                progress_percent=progress.percent,
                progress_message=progress.message[:200],
            )
