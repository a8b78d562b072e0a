from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SessionsConfig(AppConfig):
    """The LabSession lifecycle: services (the one door to the engines), runner, reconciler."""

    name = "apps.sessions"
    # "sessions" is django.contrib.sessions' label.
    label = "labsessions"
    verbose_name = _("Lab sessions")

    def ready(self) -> None:
        from apps.sessions import signals, system_checks  # noqa: F401  (registers them)
