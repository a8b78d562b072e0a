"""GET /metrics: the Prometheus text exposition of the site's figures, for scrapers only."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from apps.metrics import access
from apps.metrics.collector import LabsiteCollector

#: A registry of our own: the global one would add this process's Python and GC figures,
#: which differ from one Daphne process to the next and say nothing about the site.
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(LabsiteCollector())


def render_metrics() -> bytes:
    """The exposition text, read from the database now (blocking: run it off the loop)."""
    return generate_latest(REGISTRY)


@require_safe
async def metrics(request: HttpRequest) -> HttpResponse:
    """Async, so a slow scrape holds no worker thread shared with the pages; the refusal
    is decided before the database is touched."""
    if not access.allowed(request):
        return HttpResponse(_refusal(request), status=403, content_type="text/plain; charset=utf-8")
    body = await database_sync_to_async(render_metrics)()
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


def _refusal(request: HttpRequest) -> str:
    if not access.configured():
        return _(
            "Metrics are turned off. To let Prometheus read them, set LABSITE_METRICS_TOKEN "
            "and have it send “Authorization: Bearer <token>”, or list its address in "
            "LABSITE_METRICS_ALLOW (addresses or networks, e.g. 10.0.0.0/8).\n"
        )
    return _(
        "Not allowed. Send “Authorization: Bearer <token>” with the token of "
        "LABSITE_METRICS_TOKEN, or scrape from an address listed in LABSITE_METRICS_ALLOW "
        "(this request came from %(address)s; through a reverse proxy only the token is "
        "accepted).\n"
    ) % {"address": request.META.get("REMOTE_ADDR", "") or "?"}
