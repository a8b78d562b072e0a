from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.courses.models import Lab
from apps.pools.models import PoolSize, WarmSandbox


@admin.register(PoolSize)
class PoolSizeAdmin(admin.ModelAdmin):
    """An administrator's pool size for a lab, in place of its file's ``warm_pool``."""

    list_display = ("lab", "size", "file_size", "note", "updated_at")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "lab":  # only container labs have pools
            kwargs["queryset"] = Lab.objects.filter(kind="container").select_related("module")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("size in the lab file"))
    def file_size(self, row: PoolSize) -> int:
        return row.lab.warm_pool


@admin.register(WarmSandbox)
class WarmSandboxAdmin(admin.ModelAdmin):
    """What the pools hold now: kept by the keeper, so read-only here."""

    list_display = ("lab", "state", "host", "backend", "sandbox_name", "ready_at")
    list_filter = ("state", "lab")
    readonly_fields = [f.name for f in WarmSandbox._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
