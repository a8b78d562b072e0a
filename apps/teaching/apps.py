from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TeachingConfig(AppConfig):
    """Classes, enrollment, and the instructor's pages."""

    name = "apps.teaching"
    verbose_name = _("Teaching")

    def ready(self) -> None:
        from apps.sessions import services
        from apps.teaching import signals  # noqa: F401  (connects the receivers)
        from apps.teaching.quotas import check_class_quotas

        if check_class_quotas not in services.START_CHECKS:
            services.START_CHECKS.append(check_class_quotas)
        from apps.pools import targets
        from apps.teaching.schedule import class_demand

        if class_demand not in targets.DEMAND_SOURCES:
            targets.DEMAND_SOURCES.append(class_demand)
