from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TeachingConfig(AppConfig):
    """Classes, enrollment, and the instructor's pages."""

    name = "apps.teaching"
    verbose_name = _("Teaching")

    def ready(self) -> None:
        from apps.teaching import signals  # noqa: F401  (connects the receivers)
