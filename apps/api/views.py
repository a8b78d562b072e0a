"""The JSON API under /api/ (schema: apps/sessions/openapi.py). Thin: each view checks the
user, calls a service, and answers JSON; errors are JSON too, never an HTML page."""

from __future__ import annotations

import dataclasses
import functools
import logging

from channels.db import database_sync_to_async
from django.conf import settings
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from apps.courses.models import Lab
from apps.courses.progress import record_pass
from apps.sessions import events, runner, services
from apps.sessions.engines import get_backend
from apps.sessions.errors import LabError
from apps.sessions.models import EndReason, LabSession, State
from apps.sessions.serializers import check_json, session_json
from apps.sessions.specs import sandbox_of
from provisioning.base import HostUnavailable, SandboxError

log = logging.getLogger(__name__)


def error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": str(message)}}, status=status)


def api_view(*methods: str):
    """Async JSON view: login required, LabError and engine errors turned into JSON."""

    def decorate(view):
        @require_http_methods(list(methods))
        @functools.wraps(view)
        async def wrapper(request, *args, **kwargs):
            user = await request.auser()
            if getattr(request, "api_token_invalid", False):
                return error("bad_token", _("This API token is not valid."), 401)
            if not user.is_authenticated:
                return error("not_logged_in", _("Please log in."), 401)
            try:
                return await view(request, user, *args, **kwargs)
            except LabError as exc:
                return error(exc.code, exc.message, exc.status)
            except HostUnavailable:
                return error("engine_unavailable", _("The lab servers cannot be reached."), 503)
            except Exception:
                log.exception("API error on %s", request.path)
                return error("internal", _("Something went wrong on our side."), 500)

        return wrapper

    return decorate


@api_view("GET")
async def labs(request, user):
    rows = await database_sync_to_async(_labs)()
    return JsonResponse({"labs": rows})


def _labs() -> list[dict]:
    return [
        {
            "id": lab.pk,
            "slug": lab.slug,
            "title": lab.title,
            "summary": lab.summary,
            "module": lab.module.display_title,
            "kind": lab.kind,
            "status": lab.status,
            "url": lab.get_absolute_url(),
            "start_url": f"/api/labs/{lab.pk}/sessions/",
        }
        for lab in Lab.objects.select_related("module__course").order_by("module__number", "order")
    ]


@api_view("POST")
async def start(request, user, lab_id: int):
    lab = await database_sync_to_async(Lab.objects.filter(pk=lab_id).first)()
    if lab is None:
        raise LabError("not_found", _("No such lab."), 404)
    session, created = await database_sync_to_async(services.start_session)(user, lab)
    if created:
        runner.kick(session.pk, State.REQUESTED)
    data = await database_sync_to_async(session_json)(session)
    return JsonResponse(data, status=201 if created else 200)


@api_view("GET")
async def session_detail(request, user, session_id):
    session = await _visible(user, session_id)
    return JsonResponse(await database_sync_to_async(session_json)(session))


@api_view("POST")
async def stop(request, user, session_id):
    session = await _visible(user, session_id)
    if await database_sync_to_async(services.request_stop)(session, _end_reason(user, session)):
        runner.kick(session.pk, State.STOPPING)
    return JsonResponse(await database_sync_to_async(session_json)(session))


@api_view("POST")
async def extend(request, user, session_id):
    session = await _visible(user, session_id)
    session = await database_sync_to_async(services.extend)(session)
    await events.session_changed(session.pk)
    return JsonResponse(await database_sync_to_async(session_json)(session))


@api_view("POST")
async def reset(request, user, session_id):
    session = await _visible(user, session_id)
    if session.owner_id != user.pk:
        raise LabError("forbidden", _("Only the student can reset their lab."), 403)
    new = await database_sync_to_async(services.reset)(session)
    runner.kick(session.pk, State.STOPPING)
    runner.kick(new.pk, State.REQUESTED)
    return JsonResponse(await database_sync_to_async(session_json)(new), status=201)


@api_view("POST")
async def check(request, user, session_id, number: int):
    session = await _visible(user, session_id)
    step = await database_sync_to_async(session.lab.steps.filter(number=number).first)()
    if step is None:
        raise LabError("not_found", _("This lab has no step %(n)d.") % {"n": number}, 404)
    if session.state != State.RUNNING:
        raise LabError("not_running", _("Start the lab before checking a step."), 409)
    if not step.check_script.strip():
        raise LabError("no_check", _("This step has no automatic check."), 409)
    try:
        result = await get_backend(session.backend).run_check(
            sandbox_of(session), step.check_script, timeout=settings.LABSITE_CHECK_TIMEOUT
        )
    except SandboxError as exc:
        message = _("The check could not run: %(e)s") % {"e": exc}
        raise LabError("check_failed", message, 409) from exc
    if result.timed_out:
        stopped = _("The check took too long and was stopped.")
        result = dataclasses.replace(result, output=f"{result.output}\n{stopped}".strip())
    if result.passed and session.owner_id == user.pk:
        await database_sync_to_async(record_pass)(user, step)
    await database_sync_to_async(services.touch_activity)(session.pk)
    return JsonResponse(check_json(number, result))


async def _visible(user, session_id) -> LabSession:
    return await database_sync_to_async(services.get_visible_session)(user, session_id)


def _end_reason(user, session: LabSession):
    return EndReason.USER if session.owner_id == user.pk else EndReason.ADMIN


def csrf_failure(request, reason=""):
    if request.path.startswith("/api/"):
        return error("csrf", _("The request lacks a valid CSRF token; reload the page."), 403)
    from django.views.csrf import csrf_failure as default

    return default(request, reason)
