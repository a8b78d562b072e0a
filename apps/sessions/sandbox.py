"""The one door from the site to a session's sandbox on its engine.

The API, the terminal consumer, the admin, the runner and the reconciler reach a sandbox
only through these functions; nothing else calls a backend. Each turns the engine's
answer into what the site needs: a state change in the database when the sandbox turns
out to be gone, and a ``LabError`` in words a student understands instead of an engine
error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.courses.models import Step
from apps.courses.progress import attempts_left, record_failure, record_pass
from apps.sessions import events, services
from apps.sessions.engines import backend_for
from apps.sessions.errors import LabError
from apps.sessions.models import CheckRun, LabSession, State
from apps.sessions.serializers import check_json
from apps.sessions.specs import sandbox_of, sandbox_spec
from provisioning.base import (
    CheckResult,
    HostUnavailable,
    ProgressCallback,
    Sandbox,
    SandboxError,
    SandboxSpec,
    SandboxStatus,
    Terminal,
)

log = logging.getLogger(__name__)
#: A session runs at most CHECKS_PER_WINDOW checks per CHECK_WINDOW, whoever presses Check.
CHECK_WINDOW = timedelta(minutes=1)
CHECKS_PER_WINDOW = 20
#: The backend enforces a check's timeout (and cleans up after it); this is the server's
#: last resort for a backend that does not come back at all.
CHECK_GRACE = 15.0


class SandboxEnded(LabError):
    """The sandbox is gone or stopped by itself; the session has been ended."""

    def __init__(self, message: str) -> None:
        super().__init__("sandbox_ended", message, 409)


# -- starting and stopping (the runner) --------------------------------------------------------


async def start(session: LabSession, on_progress: ProgressCallback) -> Sandbox:
    return await start_spec(session.backend, sandbox_spec(session), session.lab.kind, on_progress)


async def stop(session: LabSession) -> None:
    backend = await backend_for(session.backend)
    await backend.stop(sandbox_of(session))


async def start_spec(
    backend_key: str, spec: SandboxSpec, kind: str, on_progress: ProgressCallback | None = None
) -> Sandbox:
    """Start ``spec`` on ``backend_key``: a session's sandbox, or one no session holds yet
    (a warm pool's), under the same timeouts."""
    timeout = settings.LABSITE_START_TIMEOUT[kind]
    backend = await backend_for(backend_key)
    # The backend enforces the timeout; this one is the server's own, for a backend that
    # does not come back at all.
    return await asyncio.wait_for(backend.start(spec, on_progress, timeout=timeout), timeout + 30)


async def remove_unclaimed(backend_key: str, box: Sandbox) -> None:
    backend = await backend_for(backend_key)
    await backend.stop(box)


# -- terminals (the consumer) ------------------------------------------------------------------


async def open_terminal(session: LabSession, *, tab: int, cols: int, rows: int) -> Terminal:
    """Attach to a running session's terminal. Raises ``SandboxEnded`` when the sandbox is
    gone (and ends the session), ``LabError`` when the engine cannot be reached."""
    backend = await backend_for(session.backend)
    try:
        return await backend.open_terminal(sandbox_of(session), tab=tab, cols=cols, rows=rows)
    except HostUnavailable as exc:
        log.warning("terminal of session %s: host unavailable: %s", session.pk, exc)
        raise _unreachable() from exc
    except SandboxError as exc:
        log.warning("terminal of session %s: %s %s", session.pk, exc, exc.detail)
        await _end_if_gone(session)
        raise LabError("terminal_failed", _("The terminal could not be opened."), 409) from exc


# -- checks (the API) --------------------------------------------------------------------------


async def check_step(user, session: LabSession, number: int) -> dict:
    """Run step ``number``'s check (as the session began with it) in the session's sandbox
    and record a pass.

    At most one check per session runs at a time, and at most CHECKS_PER_WINDOW a minute,
    in any process (conditional UPDATEs on the row); the deadline is enforced here and by
    the backend, never by the sandbox's own tools."""
    step = await database_sync_to_async(services.session_step)(session, number)
    if step is None:
        raise LabError("not_found", _("This lab has no step %(n)d.") % {"n": number}, 404)
    if not step["check_script"].strip():
        raise LabError("no_check", _("This step has no automatic check."), 409)
    owner = session.owner_id == user.pk
    if owner and await database_sync_to_async(_tries_left)(user, session, step["slug"]) == 0:
        raise LabError(
            "no_attempts",
            _(
                "You have used every try this step allows. Ask your instructor if you "
                "should get another one."
            ),
            409,
        )
    began = time.monotonic()
    result = await _checked(session, step["check_script"])
    await database_sync_to_async(CheckRun.objects.create)(
        session_id=session.pk, step=number, passed=result.passed, timed_out=result.timed_out,
        seconds=round(time.monotonic() - began, 3),
    )  # fmt: skip
    left = None
    if result.passed and owner:
        await database_sync_to_async(_record_pass)(user, session, step["slug"])
        await events.student_activity(user.pk)
    elif owner and not result.timed_out:  # a check that ran out of time judged nothing
        left = await database_sync_to_async(_record_failure)(user, session, step["slug"])
    await events.marker(session.pk, _marker_label(number, step["title"], result))
    return check_json(number, result, attempts_left=left)


async def run_draft_check(session: LabSession, number: int, script: str) -> dict:
    """An author's *Try it*: run a check's draft text in their own session of the lab. The
    same limits as a student's check; nothing is recorded as passed."""
    result = await _checked(session, script)
    await events.marker(session.pk, f"draft check of step {number}")
    return check_json(number, result)


async def _checked(session: LabSession, script: str) -> CheckResult:
    if session.state != State.RUNNING:
        raise LabError("not_running", _("Start the lab before checking a step."), 409)
    timeout = settings.LABSITE_CHECK_TIMEOUT
    if not await _within_rate(session.pk):
        raise LabError(
            "check_rate", _("You checked very often; wait a minute before checking again."), 429
        )
    if not await _claim_check(session.pk, timeout):
        raise LabError(
            "check_busy", _("A check of this lab is still running; wait for its result."), 429
        )
    try:
        result = await _run_check(session, script, timeout)
    finally:
        await _release_check(session.pk)
    if result.timed_out:
        stopped = _("The check took too long and was stopped.")
        result = dataclasses.replace(result, output=f"{result.output}\n{stopped}".strip())
    await database_sync_to_async(services.touch_activity)(session.pk)
    return result


def _record_pass(user, session: LabSession, slug: str) -> None:
    # Progress belongs to the lab's step of that name, whatever edits happened since.
    if step := _lab_step(session, slug):
        record_pass(user, step)


def _tries_left(user, session: LabSession, slug: str) -> int | None:
    step = _lab_step(session, slug)
    return attempts_left(user, step) if step else None


def _record_failure(user, session: LabSession, slug: str) -> int | None:
    step = _lab_step(session, slug)
    return record_failure(user, step) if step else None


def _lab_step(session: LabSession, slug: str) -> Step | None:
    return Step.objects.filter(lab_id=session.lab_id, slug=slug).first()


def _marker_label(number: int, title: str, result: CheckResult) -> str:
    verdict = "passed" if result.passed else ("timed out" if result.timed_out else "failed")
    return f"step {number} {verdict}: {title}"


async def _run_check(session: LabSession, script: str, timeout: float) -> CheckResult:
    backend = await backend_for(session.backend)
    try:
        return await asyncio.wait_for(
            backend.run_check(sandbox_of(session), script, timeout=timeout), timeout + CHECK_GRACE
        )
    except TimeoutError:
        log.warning("check in session %s outran the server's deadline", session.pk)
        return CheckResult(passed=False, exit_code=None, output="", timed_out=True)
    except HostUnavailable as exc:
        log.warning("check in session %s: host unavailable: %s", session.pk, exc)
        raise _unreachable() from exc
    except SandboxError as exc:
        log.warning("check in session %s could not run: %s %s", session.pk, exc, exc.detail)
        await _end_if_gone(session)
        raise LabError(
            "check_failed", _("The check could not run: %(e)s") % {"e": exc}, 409
        ) from exc


@database_sync_to_async
def _within_rate(session_id) -> bool:
    """Count this check in the session's current minute, or open a new minute."""
    now = timezone.now()
    rows = LabSession.objects.filter(pk=session_id)
    fresh = rows.filter(
        Q(check_window_started_at__isnull=True) | Q(check_window_started_at__lte=now - CHECK_WINDOW)
    ).update(check_window_started_at=now, checks_in_window=1)
    if fresh:
        return True
    counted = rows.filter(checks_in_window__lt=CHECKS_PER_WINDOW).update(
        checks_in_window=F("checks_in_window") + 1
    )
    return bool(counted)


@database_sync_to_async
def _claim_check(session_id, timeout: float) -> bool:
    now = timezone.now()
    busy_until = now + timedelta(seconds=timeout + CHECK_GRACE + 1)
    return bool(
        LabSession.objects.filter(pk=session_id, state=State.RUNNING)
        .filter(Q(check_busy_until__isnull=True) | Q(check_busy_until__lt=now))
        .update(check_busy_until=busy_until)
    )


@database_sync_to_async
def _release_check(session_id) -> None:
    LabSession.objects.filter(pk=session_id).update(check_busy_until=None)


# -- a sandbox that is gone --------------------------------------------------------------------


async def ended(session: LabSession, settle: float = 0.0) -> SandboxStatus | None:
    """Ask the engine whether the sandbox still runs; if it does not, end the session, tell
    its pages, and return how it ended. An engine that does not answer says nothing.

    ``settle``: keep asking this many seconds while it says RUNNING (a terminal stream can
    end a moment before the engine notices that PID 1 died)."""
    backend = await backend_for(session.backend)
    deadline = asyncio.get_running_loop().time() + settle
    while True:
        try:
            status = await backend.status(sandbox_of(session))
        except HostUnavailable:
            return None
        if status in (SandboxStatus.MISSING, SandboxStatus.EXITED):
            await note_gone(session.pk, status, await _exit_detail(backend, session))
            return status
        if asyncio.get_running_loop().time() >= deadline:
            return None
        await asyncio.sleep(0.2)


async def _exit_detail(backend, session: LabSession) -> str:
    """Why it ended, as the engine's listing says (rare: only when a sandbox just died)."""
    try:
        listed = await backend.list_sandboxes()
    except HostUnavailable:
        return ""
    return next((box.exit_detail for box in listed if box.name == session.sandbox_name), "")


async def _end_if_gone(session: LabSession) -> None:
    """After an engine error: if the sandbox no longer runs, end the session and say why."""
    if status := await ended(session):
        raise SandboxEnded(services.gone_message(status))


async def note_gone(session_id, status: SandboxStatus, detail: str = "") -> bool:
    """End a running session whose sandbox vanished or stopped by itself; tell its pages."""
    ended = await database_sync_to_async(services.end_gone)(session_id, status, detail)
    if ended:
        log.warning("session %s: its sandbox is %s %s", session_id, status, detail)
        await events.session_changed(session_id)
    return ended


def _unreachable() -> LabError:
    return LabError(
        "engine_unavailable",
        _("The lab servers cannot be reached right now. Please try again in a minute."),
        503,
    )
