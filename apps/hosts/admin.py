from django.contrib import admin

from apps.hosts.models import Host, Pool


class HostInline(admin.TabularInline):
    model = Host
    extra = 0
    fields = ("name", "engine", "backend", "enabled", "last_seen_at")
    readonly_fields = ("last_seen_at",)


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    inlines = [HostInline]


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ("name", "pool", "engine", "enabled", "virt_type", "last_seen_at")
    list_filter = ("pool", "engine", "enabled")
    readonly_fields = ("facts", "last_seen_at")

    @admin.display(description="KVM / TCG")
    def virt_type(self, host: Host) -> str:
        return host.facts.get("virt_type", "—")
