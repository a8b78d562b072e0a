from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.hosts.models import Host, HostSample, Pool


class HostInline(admin.TabularInline):
    model = Host
    extra = 0
    fields = ("name", "engine", "endpoint", "enabled", "draining", "health", "last_seen_at")
    readonly_fields = ("health", "last_seen_at")


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    inlines = [HostInline]


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ("name", "pool", "engine", "endpoint", "health", "draining", "enabled",
                    "virt_type", "last_seen_at")  # fmt: skip
    list_filter = ("pool", "engine", "health", "draining", "enabled")
    readonly_fields = ("facts", "health", "last_error", "down_since", "checked_at", "last_seen_at")

    @admin.display(description=_("KVM or emulation"))
    def virt_type(self, host: Host) -> str:
        return host.facts.get("virt_type", "—")


@admin.register(HostSample)
class HostSampleAdmin(admin.ModelAdmin):
    list_display = ("host", "at", "sessions", "cpus", "memory_mib", "up")
    list_filter = ("host",)
    readonly_fields = [f.name for f in HostSample._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
