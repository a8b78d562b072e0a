from django.contrib import admin

from apps.courses.models import Course, Lab, Module, Step, StepProgress


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
    list_display = ("title", "module", "kind", "status", "environment")
    list_filter = ("kind", "status")
    inlines = [StepInline]


@admin.register(StepProgress)
class StepProgressAdmin(admin.ModelAdmin):
    list_display = ("user", "step", "passed_at")
    list_filter = ("step__lab",)
