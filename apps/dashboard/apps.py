from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    """The admin's pages: the lab servers' dashboard, and adding, editing, draining and
    removing hosts of the pools."""

    name = "apps.dashboard"
    label = "dashboard"
    verbose_name = _("Lab servers")
