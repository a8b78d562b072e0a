"""The editor page's JSON endpoints: save, the disk's digest, preview, *Try it* and
*Validate*. Errors answer ``{"error": message, "code": code}`` with an HTTP status."""

from __future__ import annotations

import json
from uuid import UUID

from channels.db import database_sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.roles import is_instructor
from apps.authoring import editing, preview, store, validation
from apps.authoring.models import Validation
from apps.authoring.permissions import instructor_required, require_edit
from apps.authoring.units import BadPath, Unit, course_dir
from apps.authoring.views import lab_of
from apps.courses.models import Course
from apps.sessions import sandbox
from apps.sessions.errors import LabError
from apps.sessions.models import LIVE_STATES, LabSession

MAX_TEXT = 1024 * 1024


def _error(message: str, code: str, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": str(message), "code": code, **extra}, status=status)


def _body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ValueError(_("The request is not a JSON object."))
    return body


@require_POST
@instructor_required
def save(request, slug: str):
    course = get_object_or_404(Course, slug=slug)
    require_edit(request.user, course)
    try:
        body = _body(request)
        files = body.get("files")
        if not isinstance(files, dict) or not all(
            isinstance(v, str | None) and (v is None or len(v) <= MAX_TEXT) for v in files.values()
        ):
            raise ValueError(_("The files to save are missing or too large."))
        revision, digest = editing.save(
            request.user, course, str(body.get("path", "")), str(body.get("base_digest", "")),
            files, str(body.get("message", "")),
        )  # fmt: skip
    except (ValueError, BadPath) as exc:
        return _error(str(exc), "bad_request", 400)
    except store.Conflict as exc:
        message = _(
            "These files changed on disk (or in another tab) since you opened them. Your text "
            "is still here: look at the revisions to see what changed, then overwrite or reload."
        )
        return _error(message, "conflict", 409, disk_digest=exc.disk_digest)
    except store.Rejected as exc:
        return _error(_("Not saved: %(e)s") % {"e": exc.message}, "rejected", 400)
    return JsonResponse(
        {
            "digest": digest,
            "revision": revision.pk if revision else None,
            "message": _("Saved.") if revision else _("Nothing to save: no change."),
        }
    )


@require_GET
@instructor_required
def state(request, slug: str):
    """The unit's digest on disk, polled by the page to notice an edit made elsewhere."""
    course = get_object_or_404(Course, slug=slug)
    require_edit(request.user, course)
    try:
        unit = Unit(course_dir(course.slug), request.GET.get("path", ""))
    except BadPath:
        raise Http404("no such unit") from None
    return JsonResponse({"digest": unit.digest()})


@require_POST
@instructor_required
def render_preview(request):
    try:
        body = _body(request)
    except ValueError as exc:
        return _error(str(exc), "bad_request", 400)
    text = str(body.get("text", ""))[:MAX_TEXT]
    if body.get("kind") == "lesson":
        html = preview.lesson_html(
            text, str(body.get("course", "")), str(body.get("module_dir", ""))
        )
        return JsonResponse({"html": html})
    return JsonResponse(preview.step_preview(text))


async def _editor_of_lab(request, lab_id: int):
    """The lab, if the (instructor) user may edit it; None if they must log in."""
    user = await request.auser()
    if not user.is_authenticated:
        return user, None
    if not await database_sync_to_async(is_instructor)(user):
        raise PermissionDenied
    return user, await database_sync_to_async(lab_of)(request, lab_id)


@require_POST
async def try_check(request, lab_id: int):
    """Run the page's (unsaved) check text in the author's own running session of the lab."""
    user, lab = await _editor_of_lab(request, lab_id)
    if lab is None:
        return redirect_to_login(request.get_full_path())
    try:
        body = _body(request)
        number, script = int(body.get("number", 0)), str(body.get("script", ""))
    except (ValueError, TypeError) as exc:
        return _error(str(exc), "bad_request", 400)
    if not script.strip():
        return _error(_("This check is empty."), "empty", 400)
    live = LabSession.objects.filter(owner=user, lab=lab, state__in=LIVE_STATES)
    session = await live.select_related("lab__module", "owner", "host").afirst()
    if session is None:
        return _error(
            _("You have no session of this lab. Start one, do the step in its terminal, then try."),
            "no_session", 409, start_url=reverse("api:start", args=[lab.pk]),
            lab_url=lab.get_absolute_url(),
        )  # fmt: skip
    try:
        return JsonResponse(await sandbox.run_draft_check(session, number, script))
    except LabError as exc:
        return _error(exc.message, exc.code, exc.status)


@require_POST
async def start_validation(request, lab_id: int):
    user, lab = await _editor_of_lab(request, lab_id)
    if lab is None:
        return redirect_to_login(request.get_full_path())
    row = await validation.start(user, lab)
    return JsonResponse(
        {"id": str(row.pk), "url": reverse("authoring:validation", args=[row.pk])}, status=202
    )


@require_GET
@instructor_required
def validation_status(request, pk: UUID):
    row = get_object_or_404(Validation.objects.select_related("lab__module__course"), pk=pk)
    require_edit(request.user, row.lab.module.course)
    return JsonResponse(validation.as_json(row))
