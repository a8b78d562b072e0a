from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TerminalsConfig(AppConfig):
    """WebSocket consumers: the terminal bridge, its protocol, and the session-events feed."""

    name = "apps.terminals"
    verbose_name = _("Terminals")
