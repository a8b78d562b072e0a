from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.teaching.models import Classroom, Enrollment, Watch, WatchEvent


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    autocomplete_fields = ["student"]


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = ("name", "course", "enrollment_code", "code_expires_at")
    search_fields = ("name", "enrollment_code")
    filter_horizontal = ("instructors",)
    inlines = [EnrollmentInline]


class WatchEventInline(admin.TabularInline):
    model = WatchEvent
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "at")


@admin.register(Watch)
class WatchAdmin(admin.ModelAdmin):
    """The record of who watched whom, and when they were let type: read-only."""

    list_display = ("watcher", "student", "session", "tab", "started_at", "ended_at")
    list_filter = ("started_at",)
    search_fields = ("watcher__username", "session__owner__username", "session__id")
    readonly_fields = [f.name for f in Watch._meta.fields]
    inlines = [WatchEventInline]

    @admin.display(description=_("student"))
    def student(self, watch: Watch):
        return watch.session.owner

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
