from django.contrib import admin

from apps.courses.models import Course, Lab, Module, Step, StepAttempts, StepProgress


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("title", "slug")


@admin.register(Module)
class ModuleAdmin(admin.ModelAdmin):
    list_display = ("number", "title", "course")
    list_filter = ("course",)
    readonly_fields = ("body_html", "toc", "source_dir")


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    fields = ("number", "slug", "title")
    readonly_fields = fields
    can_delete = False


@admin.register(Lab)
class LabAdmin(admin.ModelAdmin):
    """Labs come from content/ (``load_content``), where the loader holds them to the site's
    limits and allowed capabilities. What a lab's sandbox is, and may do, is therefore
    read-only here: an edit would bypass those checks (and be undone by the next load)."""

    list_display = ("title", "module", "kind", "status", "environment")
    list_filter = ("kind", "status")
    readonly_fields = (
        "kind",
        "environment",
        "dockerfile",
        "runtime",
        "cpus",
        "memory_mib",
        "pids",
        "disk_mib",
        "capabilities",
        "network",
        "setup_script",
        "source_dir",
        # The file's pool size; an administrator sets another one under Warm pools.
        "warm_pool",
    )
    inlines = [StepInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(StepProgress)
class StepProgressAdmin(admin.ModelAdmin):
    list_display = ("user", "step", "passed_at")
    list_filter = ("step__lab",)


@admin.register(StepAttempts)
class StepAttemptsAdmin(admin.ModelAdmin):
    """Deleting a row gives the student their tries of that quiz back."""

    list_display = ("user", "step", "failed", "last_failed_at")
    list_filter = ("step__lab",)
    search_fields = ("user__username",)
    readonly_fields = ("user", "step", "failed", "last_failed_at")

    def has_add_permission(self, request) -> bool:
        return False
