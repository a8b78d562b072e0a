"""Every failure under /api/ as JSON ``{"error": {"code": ..., "message": ...}}``, never an
HTML page: ninja's exception handlers, one per kind of error, most specific first."""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from apps.sessions.errors import LabError
from provisioning.base import HostUnavailable

log = logging.getLogger(__name__)


def error(code: str, message: str, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": str(message), **extra}}, status=status)


def install(api: NinjaAPI) -> None:
    """Replace ninja's default handlers (``{"detail": ...}``, or Django's HTML 500)."""
    api.add_exception_handler(LabError, lab_error)
    api.add_exception_handler(AuthenticationError, not_logged_in)
    api.add_exception_handler(ValidationError, invalid)
    api.add_exception_handler(Http404, not_found)
    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(HostUnavailable, engine_unavailable)
    api.add_exception_handler(Exception, internal)


def lab_error(request, exc: LabError) -> JsonResponse:
    return error(exc.code, exc.message, exc.status)


def not_logged_in(request, exc: AuthenticationError) -> JsonResponse:
    return error("not_logged_in", _("Please log in."), 401)


def invalid(request, exc: ValidationError) -> JsonResponse:
    """A path parameter (or body) pydantic refused: which one, and why, in ``details``."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'][1:])}: {e['msg']}" for e in exc.errors
    )
    message = _("The request is not valid: %(problems)s") % {"problems": problems}
    return error("invalid", message, 422, details=exc.errors)


def not_found(request, exc: Http404 | None = None) -> JsonResponse:
    return error("not_found", _("There is nothing at this address of the API."), 404)


def http_error(request, exc: HttpError) -> JsonResponse:
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    return error(code, exc.message, exc.status_code)


def engine_unavailable(request, exc: HostUnavailable) -> JsonResponse:
    log.warning("API %s %s: host unavailable: %s", request.method, request.path, exc)
    return error("engine_unavailable", _("The lab servers cannot be reached."), 503)


def internal(request, exc: Exception) -> JsonResponse:
    log.error("API error on %s %s", request.method, request.path, exc_info=exc)
    return error("internal", _("Something went wrong on our side."), 500)
