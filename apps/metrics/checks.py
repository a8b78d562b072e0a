"""Startup warnings for /metrics settings that would silently refuse the scraper."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Warning

from apps.metrics.access import parse_networks


def check_metrics_access(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """An entry of LABSITE_METRICS_ALLOW that is no address or network is ignored: say so
    at startup rather than leave an operator wondering why the scrape gets 403."""
    invalid = parse_networks(settings.LABSITE_METRICS_ALLOW)[1]
    if not invalid:
        return []
    return [
        Warning(
            f"LABSITE_METRICS_ALLOW: {', '.join(invalid)} is not an address or a network "
            "and is ignored.",
            hint="Use addresses or CIDR networks, e.g. 127.0.0.1,10.0.0.0/8.",
            id="metrics.W001",
        )
    ]
