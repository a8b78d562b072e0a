from django.contrib import admin

from apps.recordings.models import Recording


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    """Read-only: rows are written by the recorder and removed by the retention."""

    list_display = ("session", "tab", "started_at", "ended_at", "bytes", "markers")
    list_filter = ("started_at",)
    search_fields = ("session__owner__username", "session__lab__title", "path")
    readonly_fields = [f.name for f in Recording._meta.fields]
    list_select_related = ("session__owner", "session__lab")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
