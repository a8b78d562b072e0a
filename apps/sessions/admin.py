from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from apps.sessions import services
from apps.sessions.models import CheckRun, EndReason, LabSession


@admin.register(LabSession)
class LabSessionAdmin(admin.ModelAdmin):
    list_display = ("owner", "lab", "state", "backend", "host", "created_at", "expires_at")
    list_filter = ("state", "backend", "host", "lab__module")
    search_fields = ("owner__username", "sandbox_name", "lab__title")
    readonly_fields = [f.name for f in LabSession._meta.fields]
    actions = ["stop_sessions"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description=_("Stop the selected sessions"))
    def stop_sessions(self, request, queryset):
        # The reconciler removes the sandboxes on its next pass; nothing waits here.
        stopped = [s for s in queryset if services.request_stop(s, EndReason.ADMIN)]
        self.message_user(
            request, _("%(n)d sessions stopped.") % {"n": len(stopped)}, messages.SUCCESS
        )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner", "lab", "host")


@admin.register(CheckRun)
class CheckRunAdmin(admin.ModelAdmin):
    list_display = ("session", "step", "passed", "timed_out", "seconds", "at")
    list_filter = ("passed", "timed_out")
    search_fields = ("session__owner__username",)
    readonly_fields = [f.name for f in CheckRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
