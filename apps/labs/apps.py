from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LabsConfig(AppConfig):
    name = "apps.labs"
    verbose_name = _("Lab sessions")

    def ready(self) -> None:
        from apps.labs import checks  # noqa: F401  (registers system checks)
