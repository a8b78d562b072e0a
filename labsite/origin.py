"""Channels' origin check, with a log line for each refusal (Channels logs nothing)."""

from __future__ import annotations

import logging

from channels.security.websocket import OriginValidator
from django.conf import settings

log = logging.getLogger("apps.security")


class LoggedOriginValidator(OriginValidator):
    def valid_origin(self, parsed_origin) -> bool:
        ok = super().valid_origin(parsed_origin)
        if not ok:
            origin = parsed_origin.geturl() if parsed_origin else "(none)"
            log.warning("websocket refused: foreign origin %s", origin)
        return ok


def allowed_hosts_origin_validator(application):
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return LoggedOriginValidator(application, allowed)
