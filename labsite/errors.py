"""Error pages: JSON under /api/, friendly pages elsewhere."""

from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


def _api(request) -> bool:
    return request.path.startswith("/api/")


def forbidden(request, exception=None):
    if _api(request):
        return JsonResponse(
            {"error": {"code": "forbidden", "message": _("Not allowed.")}}, status=403
        )
    return render(request, "errors/403.html", status=403)


def not_found(request, exception=None):
    if _api(request):
        return JsonResponse(
            {"error": {"code": "not_found", "message": _("Not found.")}}, status=404
        )
    return render(request, "errors/404.html", status=404)


def server_error(request):
    if _api(request):
        message = _("Something went wrong on our side.")
        return JsonResponse({"error": {"code": "internal", "message": message}}, status=500)
    return render(request, "errors/500.html", status=500)
