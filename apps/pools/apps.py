from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PoolsConfig(AppConfig):
    """Warm pools: container sandboxes started ahead of demand, handed out on Start."""

    name = "apps.pools"
    verbose_name = _("Warm pools")

    def ready(self) -> None:
        from apps.hosts import placement
        from apps.pools import claims, keeper
        from apps.sessions import reconciler, services

        _register(services.READY_SANDBOXES, claims.claim_ready)
        _register(reconciler.LISTING_OBSERVERS, keeper.observe_listing)
        _register(reconciler.HOUSEKEEPING, keeper.KEEPER.run_once)
        _register(placement.OTHER_LOADS, claims.member_loads)


def _register(registry: list, hook) -> None:
    if hook not in registry:
        registry.append(hook)
