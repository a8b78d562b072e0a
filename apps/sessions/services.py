"""What Start, Stop, Extend, Reset and Check do, as database changes. Nothing here waits
on an engine: a request writes the wanted state and ``runner.kick`` acts on it at once;
the reconciler is the safety net that acts on anything left behind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.roles import is_admin, is_instructor
from apps.courses.models import Lab
from apps.hosts import placement
from apps.hosts.placement import Placement
from apps.sessions import progress_messages
from apps.sessions.engines import DEFAULT_KEY_FOR_KIND
from apps.sessions.errors import LabError
from apps.sessions.models import LIVE_STATES, EndReason, LabSession, State
from apps.sessions.specs import sandbox_name
from provisioning.base import SandboxStatus

#: Activity is written at most this often per session, so typing costs no database load.
ACTIVITY_WRITE_INTERVAL = timedelta(seconds=30)


def start_session(user, lab: Lab) -> tuple[LabSession, bool]:
    """The user's active session for ``lab``, creating it if there is none.

    Idempotent: a double click or a second tab returns the same session (the database's
    unique constraint on live sessions settles a race). The running-labs limit and the
    quotas hold under races too: the checks, the placement and the insert happen under a
    lock on the user's row (and on the candidate hosts' rows), so two processes starting
    at the same instant are serialised. With no host that has room, the session waits in
    the queue (``backend`` empty) until ``place_queued`` finds it one."""
    if not lab.is_ready:
        raise LabError("lab_not_ready", _("This lab is not available yet."), 409)
    if existing := _active(user, lab):
        return existing, False
    try:
        with transaction.atomic():
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            if existing := _active(user, lab):
                return existing, False
            _enforce_limit(user)
            for check in START_CHECKS:
                check(user, lab)
            if ready := _claim_ready(user, lab):
                return _running_from(ready, user, lab), True
            placed = _place(lab)
            session = LabSession.objects.create(
                owner=user,
                lab=lab,
                host=placed.host,
                backend=_backend_key(lab, placed),
                # Nothing to say until the start says something (a queued session's
                # place in the queue is said by the serializer).
                progress_message="",
                steps=steps_snapshot(lab),
            )
            session.sandbox_name = sandbox_name(session)
            session.save(update_fields=["sandbox_name"])
    except IntegrityError:
        if existing := _active(user, lab):
            return existing, False
        raise
    return session, True


#: Checks other apps add (teaching's class quotas), run inside the start's transaction;
#: each raises LabError to refuse. Registered in their AppConfig.ready.
START_CHECKS: list[Callable[[object, Lab], None]] = []


@dataclass(frozen=True)
class ReadySandbox:
    """A sandbox already running for ``lab`` that a Start may take (a warm pool's): its
    id becomes the session's, and its labels already carry that id."""

    id: UUID
    host: object | None
    backend: str
    sandbox_name: str
    engine_id: str


#: Sources of ready sandboxes (the warm pools), asked in order inside the start's
#: transaction, after the checks: each returns one it has handed over, or None.
READY_SANDBOXES: list[Callable[[object, Lab], ReadySandbox | None]] = []


def _claim_ready(user, lab: Lab) -> ReadySandbox | None:
    for source in READY_SANDBOXES:
        if ready := source(user, lab):
            return ready
    return None


def _running_from(ready: ReadySandbox, user, lab: Lab) -> LabSession:
    now = timezone.now()
    return LabSession.objects.create(
        id=ready.id,
        owner=user,
        lab=lab,
        host=ready.host,
        backend=ready.backend,
        state=State.RUNNING,
        sandbox_name=ready.sandbox_name,
        engine_id=ready.engine_id,
        started_at=now,
        last_activity_at=now,
        expires_at=now + timedelta(minutes=lab.time_limit_minutes),
        progress_percent=100,
        progress_message="",
        steps=steps_snapshot(lab),
    )


def _place(lab: Lab) -> Placement:
    try:
        return placement.place(lab)
    except placement.NoHostForLab as exc:
        needs = ", ".join(exc.labels) or "-"
        raise LabError(
            "no_host",
            _(
                "No lab server can run this lab right now (pool “%(pool)s”, needs: %(needs)s). "
                "Tell your instructor."
            )
            % {"pool": exc.pool, "needs": needs},
            503,
        ) from None


def _backend_key(lab: Lab, placed: Placement) -> str:
    if placed.host is not None:
        return placed.host.backend_key
    return "" if placed.queued else DEFAULT_KEY_FOR_KIND[lab.kind]


def place_queued(limit: int = 50) -> list[LabSession]:
    """Give waiting sessions a host, oldest first, as far as room allows; the ones placed
    (to be started by the caller). A session that still finds no room keeps its place."""
    placed = []
    for session_id in (
        LabSession.objects.filter(state=State.REQUESTED, backend="")
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    ):
        with transaction.atomic():
            session = (
                # Only the session's row: locking its lab too would block every Start's
                # commit, whose foreign-key check shares that row, while this waits for a host.
                LabSession.objects.select_for_update(of=("self",))
                .select_related("lab")
                .filter(pk=session_id, state=State.REQUESTED, backend="")
                .first()
            )
            if session is None:
                continue
            try:
                where = placement.place(session.lab)
            except placement.NoHostForLab:
                continue  # hosts may come back; an admin may add one
            if where.queued:
                continue
            session.host = where.host
            session.backend = _backend_key(session.lab, where)
            session.progress_message = ""
            session.save(update_fields=["host", "backend", "progress_message", "updated_at"])
            placed.append(session)
    return placed


def queue_position(session: LabSession) -> int | None:
    """1 for the next session to be placed; None when the session is not waiting."""
    if session.state != State.REQUESTED or session.backend:
        return None
    ahead = LabSession.objects.filter(
        state=State.REQUESTED, backend="", created_at__lt=session.created_at
    ).count()
    return ahead + 1


def steps_snapshot(lab: Lab) -> list[dict]:
    """What a session keeps of its lab's steps, so later edits leave it alone."""
    return [steps_snapshot_of(step) for step in lab.steps.all()]


def session_step(session: LabSession, number: int) -> dict | None:
    """Step ``number`` as the session began with it (older sessions: the lab's current)."""
    if session.steps:
        return next((s for s in session.steps if s["number"] == number), None)
    step = session.lab.steps.filter(number=number).first()
    return steps_snapshot_of(step) if step else None


SNAPSHOT_FIELDS = (
    "number", "slug", "title", "title_en", "body_html", "check_script", "attempts",
)  # fmt: skip


def steps_snapshot_of(step) -> dict:
    return {f: getattr(step, f) for f in SNAPSHOT_FIELDS}


def _enforce_limit(user) -> None:
    limit = settings.LABSITE_MAX_ACTIVE_SESSIONS
    if is_instructor(user):
        return
    if LabSession.objects.filter(owner=user, state__in=LIVE_STATES).count() >= limit:
        raise LabError(
            "too_many_sessions",
            _("You already have %(n)d labs running. Stop one before starting another.")
            % {"n": limit},
            409,
        )


def request_stop(session: LabSession, reason: EndReason, message: str = "") -> bool:
    """Ask for the sandbox to go away. Returns False if it was not live any more.
    ``message`` tells the student why, where the reason alone does not say enough."""
    # The lease is cleared so a teardown can claim the row at once; a start still under
    # way notices at its next renewal and gives up.
    changed = LabSession.objects.filter(pk=session.pk, state__in=LIVE_STATES).update(
        state=State.STOPPING,
        end_reason=reason,
        failure_message=message,
        lease_owner="",
        lease_expires_at=None,
        updated_at=timezone.now(),
    )
    session.refresh_from_db()
    return bool(changed)


def extend(session: LabSession) -> LabSession:
    """Add time, with the extension limit enforced by one conditional UPDATE: a burst of
    clicks from several tabs cannot extend more often than allowed."""
    if session.state != State.RUNNING:
        raise LabError("not_running", _("Only a running lab can be extended."), 409)
    now = timezone.now()
    added = timedelta(minutes=settings.LABSITE_EXTEND_MINUTES)
    extended = LabSession.objects.filter(
        pk=session.pk,
        state=State.RUNNING,
        expires_at__gt=now,
        extensions__lt=settings.LABSITE_MAX_EXTENSIONS,
    ).update(expires_at=F("expires_at") + added, extensions=F("extensions") + 1, updated_at=now)
    session.refresh_from_db()
    if not extended:
        if session.state != State.RUNNING:
            raise LabError("not_running", _("Only a running lab can be extended."), 409)
        raise LabError("no_more_extensions", _("This lab cannot be extended any further."), 409)
    return session


def reset(session: LabSession) -> LabSession:
    """Replace the sandbox with a fresh one: the old session stops, a new one starts. The
    new one keeps the old one's deadline and extensions: a Reset is a clean sandbox, not
    more time (or it would sidestep the extension limit)."""
    with transaction.atomic():
        deadline, extensions = session.expires_at, session.extensions
        if not request_stop(session, EndReason.RESET):
            raise LabError("not_running", _("This lab is not running."), 409)
        new, _created = start_session(session.owner, session.lab)
        LabSession.objects.filter(pk=new.pk).update(expires_at=deadline, extensions=extensions)
        new.expires_at, new.extensions = deadline, extensions
    return new


def get_visible_session(user, session_id: UUID | str) -> LabSession:
    """The session if ``user`` may see it; otherwise LabError 404 (never say it exists)."""
    session = (
        LabSession.objects.select_related("lab__module__course", "owner")
        .filter(pk=session_id)
        .first()
    )
    if session is None or not can_view(user, session):
        raise LabError("not_found", _("No such lab session."), 404)
    return session


def can_view(user, session: LabSession) -> bool:
    """Owner, an instructor of one of the owner's classes, or an admin."""
    if not user.is_authenticated:
        return False
    if session.owner_id == user.pk or is_admin(user):
        return True
    return is_instructor(user) and session.owner.classrooms.filter(instructors=user).exists()


def touch_activity(session_id, now=None) -> None:
    now = now or timezone.now()
    LabSession.objects.filter(
        pk=session_id, last_activity_at__lt=now - ACTIVITY_WRITE_INTERVAL
    ).update(last_activity_at=now)


def gone_message(status: SandboxStatus, detail: str = "") -> str:
    if status == SandboxStatus.EXITED:
        message = _(
            "Your lab environment stopped by itself (for example after poweroff, or when its "
            "main process ended or ran out of memory). Start the lab again to get a fresh one."
        )
        if not detail:
            return message
        return _("%(message)s (%(detail)s)") % {
            "message": message,
            "detail": progress_messages.translate(detail),
        }
    return _(
        "Your lab environment disappeared (the server may have restarted). "
        "Start the lab again to get a fresh one."
    )


def host_down_message() -> str:
    return _(
        "The lab server running your lab stopped answering, and your lab environment is "
        "lost with it. Start the lab again: it will run on another server."
    )


def disk_message(used_mib: int, limit_mib: int) -> str:
    return _(
        "Your lab environment was stopped because it wrote %(used)d MiB to its disk; this "
        "lab allows %(limit)d MiB. Start the lab again for a fresh one."
    ) % {"used": used_mib, "limit": limit_mib}


def end_gone(session_id, status: SandboxStatus, detail: str = "") -> bool:
    """End a running session whose sandbox is gone (MISSING) or ended by itself (EXITED).
    Returns False if the session was not running any more."""
    now = timezone.now()
    return bool(
        LabSession.objects.filter(pk=session_id, state=State.RUNNING).update(
            state=State.FAILED,
            end_reason=EndReason.EXITED if status == SandboxStatus.EXITED else EndReason.LOST,
            failure_message=gone_message(status, detail),
            ended_at=now,
            updated_at=now,
        )
    )


def _active(user, lab: Lab) -> LabSession | None:
    return LabSession.objects.filter(owner=user, lab=lab, state__in=LIVE_STATES).first()
