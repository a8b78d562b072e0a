from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.audit.log import record
from apps.audit.models import Action
from apps.teaching.models import Classroom, Enrollment, Watch, WatchEvent

#: The fields of a class that limit its students (changes go to the audit log).
QUOTA_FIELDS = ("max_running", "minutes_per_day")


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    autocomplete_fields = ["student"]
    readonly_fields = ("joined_at",)


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = (
        "name", "course", "enrollment_code", "code_expires_at", "max_running", "minutes_per_day",
        "student_count",
    )  # fmt: skip
    list_filter = ("course",)
    list_select_related = ("course",)
    search_fields = ("name", "enrollment_code")
    filter_horizontal = ("instructors",)
    inlines = [EnrollmentInline]

    @admin.display(description=_("students"))
    def student_count(self, classroom: Classroom) -> int:
        return classroom.enrollment_set.count()

    def save_model(self, request, obj: Classroom, form, change) -> None:
        super().save_model(request, obj, form, change)
        changed = {f: form.cleaned_data[f] for f in QUOTA_FIELDS if f in form.changed_data}
        if changed:
            before = {f: form.initial.get(f) for f in changed}
            record(request.user, Action.QUOTA_CHANGED, target=obj.name, classroom=obj.pk,
                   before=before, after=changed, where="admin")  # fmt: skip


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
    list_select_related = ("watcher", "session__owner")
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
