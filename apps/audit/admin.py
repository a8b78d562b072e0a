from django.contrib import admin

from apps.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The record itself: read-only, never added to, changed or thinned out by hand."""

    list_display = ("at", "actor_name", "action", "target", "host_name", "session_id")
    list_filter = ("action", "at")
    search_fields = ("actor_name", "target", "host_name")
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
