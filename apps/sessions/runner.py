"""The engine side of a session: start it, stop it. Each action first *claims* the row
with a conditional UPDATE, so the web process and the reconciler never both act on the
same transition, and a crash half-way leaves a row the reconciler will pick up."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time

from channels.db import database_sync_to_async
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.sessions import events
from apps.sessions.engines import get_backend
from apps.sessions.models import EndReason, LabSession, State
from apps.sessions.specs import image_for, sandbox_of, sandbox_spec
from provisioning.base import HostUnavailable, Progress, SandboxError

log = logging.getLogger(__name__)
_tasks: set[asyncio.Task] = set()
#: Progress is written to the database at most this often (it is also sent live).
PROGRESS_WRITE_INTERVAL = 1.0


def kick(session_id, state: State) -> None:
    """Act on a session now, in the background of the running event loop."""
    action = provision if state == State.REQUESTED else teardown
    # A fresh context: the task outlives the request, so it must not inherit the request's
    # thread-sensitive executor (asgiref), which closes with the response.
    _spawn(action(session_id), context=contextvars.Context())


def _spawn(coro, context: contextvars.Context | None = None) -> None:
    """Run ``coro`` in the background, keeping a reference until it ends (see wait_idle)."""
    task = asyncio.get_running_loop().create_task(coro, context=context)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def wait_idle() -> None:
    """Wait for every kicked task (tests and shutdown)."""
    while _tasks:
        await asyncio.gather(*list(_tasks), return_exceptions=True)


@database_sync_to_async
def _claim(session_id, from_state: State, to_state: State) -> LabSession | None:
    claimed = LabSession.objects.filter(pk=session_id, state=from_state).update(
        state=to_state, updated_at=timezone.now()
    )
    if not claimed:
        return None
    return LabSession.objects.select_related("lab__module", "owner", "host").get(pk=session_id)


@database_sync_to_async
def _update(session_id, only_if: State | None = None, **fields) -> bool:
    rows = LabSession.objects.filter(pk=session_id)
    if only_if is not None:
        rows = rows.filter(state=only_if)
    return bool(rows.update(updated_at=timezone.now(), **fields))


async def provision(session_id) -> None:
    session = await _claim(session_id, State.REQUESTED, State.STARTING)
    if session is None:
        return  # someone else claimed it, or it was stopped before it began
    await events.session_changed(session_id)
    backend = get_backend(session.backend)
    spec = sandbox_spec(session)
    reporter = _ProgressReporter(session_id)
    try:
        if session.lab.dockerfile:
            await _ensure_lab_image(backend, session, reporter)
        sandbox = await backend.start(spec, on_progress=reporter)
    except (SandboxError, OSError) as exc:
        log.warning("session %s failed to start: %s", session_id, exc)
        await _fail(session_id, exc)
        await _stop_quietly(backend, session)
        return
    now = timezone.now()
    started = await _update(
        session_id,
        only_if=State.STARTING,
        state=State.RUNNING,
        engine_id=sandbox.engine_id,
        started_at=now,
        last_activity_at=now,
        expires_at=now + session.time_limit(),
        progress_percent=100,
        progress_message="",
    )
    if not started:
        # Stopped while it was starting: the stop found nothing yet, so clean up here.
        log.info("session %s was stopped during its start; removing the sandbox", session_id)
        await _stop_quietly(backend, session)
    await events.session_changed(session_id)


async def teardown(session_id) -> None:
    session = await database_sync_to_async(
        LabSession.objects.select_related("lab__module", "owner").filter(pk=session_id).first
    )()
    if session is None or session.state != State.STOPPING:
        return
    backend = get_backend(session.backend)
    try:
        await backend.stop(sandbox_of(session))
    except HostUnavailable:
        log.warning("session %s: host unavailable, will retry the stop", session_id)
        return
    final = (
        State.EXPIRED
        if session.end_reason in (EndReason.TIME_LIMIT, EndReason.IDLE)
        else (State.STOPPED)
    )
    await _update(session_id, only_if=State.STOPPING, state=final, ended_at=timezone.now())
    await events.session_changed(session_id)
    log.info("session %s %s (%s)", session_id, final, session.end_reason)


async def _ensure_lab_image(backend, session: LabSession, reporter) -> None:
    ref = image_for(session)
    if not await backend.image_exists(ref):
        reporter(Progress(5, "building the lab image"))
        await backend.build_image(ref, session.lab.dockerfile)


async def _fail(session_id, exc: Exception) -> None:
    if isinstance(exc, HostUnavailable):
        message = _("The lab servers cannot be reached right now. Please try again in a minute.")
    else:
        message = _(
            "Your lab environment could not be started (%(reason)s). Please try again; "
            "if it keeps failing, tell your instructor."
        ) % {"reason": exc}
    await _update(
        session_id,
        state=State.FAILED,
        end_reason=EndReason.ERROR,
        failure_message=message,
        ended_at=timezone.now(),
    )
    await events.session_changed(session_id)


async def _stop_quietly(backend, session: LabSession) -> None:
    try:
        await backend.stop(sandbox_of(session))
    except Exception:
        log.exception("cleanup of session %s failed; the reconciler will retry", session.pk)


class _ProgressReporter:
    """Sends each progress step to the page at once; writes it to the row now and then."""

    def __init__(self, session_id) -> None:
        self.session_id = session_id
        self.last_write = 0.0

    def __call__(self, progress: Progress) -> None:
        _spawn(self.publish(progress))

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
