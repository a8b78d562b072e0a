from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    """The JSON API under /api/ for scripts and for the lab page."""

    name = "apps.api"
    verbose_name = _("JSON API")
