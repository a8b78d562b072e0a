from django.contrib import admin

from apps.teaching.models import Classroom, Enrollment


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
