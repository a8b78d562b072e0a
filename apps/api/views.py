"""The JSON API's operations. Thin: ninja has authenticated the caller (``request.auth``,
see auth.py) and validated the path; each view calls the service layer and answers JSON.
Errors are raised (``LabError``) and turned into JSON by errors.py.

Sessions and check results are sent as the dicts ``apps.sessions.serializers`` builds, as
they are (``JsonResponse``): schemas.py describes them for the OpenAPI document."""

from __future__ import annotations

from uuid import UUID

from channels.db import database_sync_to_async
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja import Path, Router

from apps.api import schemas
from apps.api.auth import CSRF_MESSAGE
from apps.api.errors import error
from apps.audit.log import arecord
from apps.courses.models import Lab
from apps.sessions import events, runner, sandbox, services
from apps.sessions.errors import LabError
from apps.sessions.models import EndReason, LabSession, State
from apps.sessions.serializers import session_json

router = Router()


@router.get(
    "/labs/",
    url_name="labs",
    summary=gettext_lazy("List the labs"),
    response={200: schemas.LabList, schemas.errors(): schemas.Error},
)
async def labs(request):
    return {"labs": await database_sync_to_async(_labs)()}


def _labs() -> list[dict]:
    return [
        {
            "id": lab.pk,
            "slug": lab.slug,
            "title": lab.display_title,
            "summary": lab.display_summary,
            "module": lab.module.display_title,
            "kind": lab.kind,
            "status": lab.status,
            "url": lab.get_absolute_url(),
            "start_url": f"/api/labs/{lab.pk}/sessions/",
        }
        for lab in Lab.objects.select_related("module__course").order_by("module__number", "order")
    ]


@router.post(
    "/labs/{lab_id}/sessions/",
    url_name="start",
    summary=gettext_lazy("Start a lab"),
    description=gettext_lazy(
        "Starts a sandbox for the lab (201), or returns the session already live for it (200)."
    ),
    response={(200, 201): schemas.Session, schemas.errors(404, 409): schemas.Error},
)
async def start(request, lab_id: int):
    user = request.auth
    lab = await database_sync_to_async(Lab.objects.filter(pk=lab_id).first)()
    if lab is None:
        raise LabError("not_found", _("No such lab."), 404)
    session, created = await database_sync_to_async(services.start_session)(user, lab)
    if created:
        if session.state == State.REQUESTED:
            runner.kick(session.pk, State.REQUESTED)
        else:  # a warm pool's sandbox, running already: only the watchers need telling
            await events.session_changed(session.pk)
        await arecord(user, "session_started", session=session)
    return await _session_response(session, status=201 if created else 200)


@router.get(
    "/sessions/{session_id}/",
    url_name="session",
    summary=gettext_lazy("Get a session"),
    response={200: schemas.Session, schemas.errors(404): schemas.Error},
)
async def session_detail(request, session_id: UUID):
    return await _session_response(await _visible(request.auth, session_id))


@router.post(
    "/sessions/{session_id}/extend/",
    url_name="extend",
    summary=gettext_lazy("Add time to a running session"),
    response={200: schemas.Session, schemas.errors(404, 409): schemas.Error},
)
async def extend(request, session_id: UUID):
    session = await _visible(request.auth, session_id)
    session = await database_sync_to_async(services.extend)(session)
    await events.session_changed(session.pk)
    return await _session_response(session)


@router.post(
    "/sessions/{session_id}/stop/",
    url_name="stop",
    summary=gettext_lazy("Stop a session and remove its sandbox"),
    response={200: schemas.Session, schemas.errors(404): schemas.Error},
)
async def stop(request, session_id: UUID):
    user = request.auth
    session = await _visible(user, session_id)
    reason = _end_reason(user, session)
    await runner.stop_by(user, session, reason)
    return await _session_response(session)


@router.post(
    "/sessions/{session_id}/reset/",
    url_name="reset",
    summary=gettext_lazy("Replace the sandbox with a fresh one"),
    description=gettext_lazy(
        "Only the session's student may reset it. Returns the new session (201)."
    ),
    response={201: schemas.Session, schemas.errors(404, 409): schemas.Error},
)
async def reset(request, session_id: UUID):
    user = request.auth
    session = await _visible(user, session_id)
    if session.owner_id != user.pk:
        raise LabError("forbidden", _("Only the student can reset their lab."), 403)
    new = await database_sync_to_async(services.reset)(session)
    runner.kick(session.pk, State.STOPPING)
    runner.kick(new.pk, State.REQUESTED)
    await arecord(user, "session_reset", session=session, new_session=str(new.pk))
    return await _session_response(new, status=201)


@router.post(
    "/sessions/{session_id}/steps/{number}/check/",
    url_name="check",
    summary=gettext_lazy("Run a step's check inside the sandbox"),
    response={200: schemas.CheckResult, schemas.errors(404, 409, 429, 503): schemas.Error},
)
async def check(request, session_id: UUID, number: int = Path(..., ge=1)):
    user = request.auth
    session = await _visible(user, session_id)
    return JsonResponse(await sandbox.check_step(user, session, number))


async def _visible(user, session_id: UUID) -> LabSession:
    return await database_sync_to_async(services.get_visible_session)(user, session_id)


async def _session_response(session: LabSession, status: int = 200) -> JsonResponse:
    return JsonResponse(await database_sync_to_async(session_json)(session), status=status)


def _end_reason(user, session: LabSession) -> EndReason:
    return EndReason.USER if session.owner_id == user.pk else EndReason.ADMIN


def csrf_failure(request, reason=""):
    """settings.CSRF_FAILURE_VIEW: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error("csrf", CSRF_MESSAGE, 403)
    from django.views.csrf import csrf_failure as default

    return default(request, reason)
