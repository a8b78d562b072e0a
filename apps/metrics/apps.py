from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MetricsConfig(AppConfig):
    name = "apps.metrics"
    label = "metrics"
    verbose_name = _("Metrics")

    def ready(self) -> None:
        from django.core import checks

        from apps.metrics.checks import check_metrics_access

        checks.register(check_metrics_access)
