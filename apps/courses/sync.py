"""Write courses read by the loader into the database, matching rows by slug so that
students' progress survives edits. All or nothing: the caller wraps it in a transaction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from apps.courses.loader import CourseData, LabData, ModuleData
from apps.courses.models import Course, Lab, Module, Step


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def sync_course(data: CourseData, report: SyncReport) -> Course:
    course, created = Course.objects.update_or_create(
        slug=data.slug,
        defaults={
            "title": data.title,
            "title_en": data.title_en,
            "summary": data.summary,
            "summary_en": data.summary_en,
        },
    )
    _note(report, created, f"course {data.slug}")
    kept = [_sync_module(course, module, report).pk for module in data.modules]
    _remove(report, course.modules.exclude(pk__in=kept), "module")
    return course


def _sync_module(course: Course, data: ModuleData, report: SyncReport) -> Module:
    module, created = Module.objects.update_or_create(
        course=course,
        slug=data.slug,
        defaults={
            "number": data.number,
            "title": data.title,
            "title_en": data.title_en,
            "summary": data.summary,
            "summary_en": data.summary_en,
            "body_html": data.body_html,
            "toc": [list(item) for item in data.toc],
            "source_dir": data.source_dir,
        },
    )
    _note(report, created, f"module {data.slug}")
    kept = [_sync_lab(module, lab, report).pk for lab in data.labs]
    _remove(report, module.labs.exclude(pk__in=kept), "lab")
    return module


def _sync_lab(module: Module, data: LabData, report: SyncReport) -> Lab:
    fields = {k: v for k, v in asdict(data).items() if k not in ("slug", "steps")}
    lab, created = Lab.objects.update_or_create(module=module, slug=data.slug, defaults=fields)
    _note(report, created, f"lab {data.slug}")
    kept = []
    for step in data.steps:
        row, _ = Step.objects.update_or_create(
            lab=lab,
            slug=step.slug,
            defaults={k: v for k, v in asdict(step).items() if k != "slug"},
        )
        kept.append(row.pk)
    _remove(report, lab.steps.exclude(pk__in=kept), "step")
    return lab


def _note(report: SyncReport, created: bool, what: str) -> None:
    (report.created if created else report.updated).append(what)


def _remove(report: SyncReport, queryset, kind: str) -> None:
    for row in queryset:
        report.removed.append(f"{kind} {row.slug}")
    queryset.delete()
