from django.contrib import admin

from apps.authoring.models import CourseRole, Revision, Validation


@admin.register(CourseRole)
class CourseRoleAdmin(admin.ModelAdmin):
    list_display = ("course", "user", "role", "granted_at")
    list_filter = ("role", "course")
    search_fields = ("user__username", "course__slug")
    autocomplete_fields = ["user"]


@admin.register(Revision)
class RevisionAdmin(admin.ModelAdmin):
    """The history of the files: read-only (a restore goes through the editor, which writes
    the files and checks them with the loader)."""

    list_display = ("course", "path", "source", "author", "created_at", "message")
    list_filter = ("source", "course")
    search_fields = ("path", "message", "author__username")
    readonly_fields = [f.name for f in Revision._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Validation)
class ValidationAdmin(admin.ModelAdmin):
    list_display = ("lab", "user", "status", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in Validation._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
