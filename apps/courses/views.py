from __future__ import annotations

import mimetypes
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render

from apps.courses.models import Course, Module, StepProgress
from apps.courses.progress import passed_steps

ASSET_TYPES = {".svg", ".png", ".jpg", ".jpeg", ".webp"}


def home(request):
    courses = Course.objects.annotate(module_count=Count("modules"))
    if courses.count() == 1:
        return redirect(courses.first())
    return render(request, "courses/home.html", {"courses": courses})


def course(request, course_slug: str):
    course = get_object_or_404(Course, slug=course_slug)
    modules = course.modules.annotate(
        lab_count=Count("labs", distinct=True),
        ready_count=Count("labs", filter=Q(labs__status="ready"), distinct=True),
        step_count=Count("labs__steps", distinct=True),
    ).order_by("number")
    done = {}
    if request.user.is_authenticated:
        done = dict(
            StepProgress.objects.filter(user=request.user, step__lab__module__course=course)
            .values_list("step__lab__module")
            .annotate(n=Count("pk"))
        )
    for module in modules:
        module.done_count = done.get(module.pk, 0)
    return render(request, "courses/course.html", {"course": course, "modules": modules})


def module(request, course_slug: str, module_slug: str):
    module = get_object_or_404(
        Module.objects.select_related("course"), course__slug=course_slug, slug=module_slug
    )
    labs = list(module.labs.annotate(step_count=Count("steps")).order_by("order", "slug"))
    for lab in labs:
        lab.passed_count = len(passed_steps(request.user, lab))
    siblings = list(module.course.modules.only("slug", "number", "title", "title_en"))
    index = [m.pk for m in siblings].index(module.pk)
    return render(
        request,
        "courses/module.html",
        {
            "module": module,
            "course": module.course,
            "labs": labs,
            "previous": siblings[index - 1] if index > 0 else None,
            "next": siblings[index + 1] if index + 1 < len(siblings) else None,
        },
    )


def asset(request, course_slug: str, module_dir: str, name: str):
    """A diagram of a lesson, served from the content folder (images only)."""
    root = Path(settings.CONTENT_DIR).resolve()
    path = (root / course_slug / module_dir / "diagrams" / name).resolve()
    if root not in path.parents or path.suffix.lower() not in ASSET_TYPES or not path.is_file():
        raise Http404("no such diagram")
    response = FileResponse(path.open("rb"), content_type=mimetypes.guess_type(path.name)[0])
    # An SVG opened on its own must not run scripts in our origin.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response["Cache-Control"] = "public, max-age=3600"
    return response
