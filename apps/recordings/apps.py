from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecordingsConfig(AppConfig):
    name = "apps.recordings"
    label = "recordings"
    verbose_name = _("Terminal recordings")

    def ready(self) -> None:
        from apps.recordings import retention
        from apps.sessions import reconciler

        # Old recordings go on the reconciler's beat (at most hourly; see retention).
        if retention.prune_if_due not in reconciler.HOUSEKEEPING:
            reconciler.HOUSEKEEPING.append(retention.prune_if_due)
