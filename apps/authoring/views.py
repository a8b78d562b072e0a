"""The editor's pages: the list of courses one may edit, an editor page per unit (course,
module, lab), a unit's revisions, import and export, and who may edit a course."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.authoring import archive, editing, history, importing, store
from apps.authoring.forms import GrantForm, ImportForm
from apps.authoring.layout import layout
from apps.authoring.models import CourseRole, CourseRoleKind, Revision
from apps.authoring.permissions import (
    can_edit,
    can_grant,
    editable_courses,
    instructor_required,
    require_edit,
)
from apps.authoring.strings import editor_strings
from apps.authoring.units import LAB, MODULE, BadPath, Unit, course_dir, kind_of
from apps.courses.models import Course, Lab, Module
from apps.sessions.models import LIVE_STATES, LabSession

REVISIONS_SHOWN = 50


@instructor_required
def index(request):
    courses = editable_courses(request.user).order_by("slug")
    modules = Module.objects.filter(course__in=courses).select_related("course")
    return render(
        request,
        "authoring/index.html",
        {
            "courses": courses,
            "import_form": ImportForm(modules=modules),
            "strings": editor_strings(),
        },
    )


def _course(request, slug: str) -> Course:
    course = get_object_or_404(Course, slug=slug)
    require_edit(request.user, course)
    return course


def _unit(course: Course, path: str) -> Unit:
    try:
        unit = Unit(course_dir(course.slug), path)
    except BadPath:
        raise Http404("no such unit") from None
    if not unit.dir.is_dir():
        raise Http404("no such folder")
    return unit


def _editor(request, course: Course, path: str, template: str, extra: dict) -> HttpResponse:
    """An editor page: the unit's files as they are on disk, for the page's script."""
    unit = _unit(course, path)
    loaded = editing.load(course, path)
    urls = {
        "save": reverse("authoring:save", args=[course.slug]),
        "state": reverse("authoring:state", args=[course.slug]) + f"?path={path}",
        "preview": reverse("authoring:preview"),
        "revisions": reverse("authoring:revisions", args=[course.slug]) + f"?path={path}",
    } | extra.pop("urls", {})
    data = {
        "course": course.slug,
        "path": path,
        "kind": unit.kind,
        "digest": loaded.digest,
        "files": loaded.files,
        "urls": urls,
    } | extra.pop("data", {})
    context = {
        "course": course,
        "unit": unit,
        "layout": layout(unit.kind, loaded.files),
        "editor_data": data,
        "urls": urls,
        "revision_count": Revision.objects.filter(course=course, path=path).count(),
        "strings": editor_strings(),
        **extra,
    }
    return render(request, template, context)


@instructor_required
def course_page(request, slug: str):
    course = _course(request, slug)
    modules = list(course.modules.prefetch_related("labs").order_by("number"))
    for module in modules:
        module.dir = Path(module.source_dir).name
    return _editor(
        request, course, "", "authoring/course.html",
        {
            "modules": modules,
            "roles": CourseRole.objects.filter(course=course).select_related("user"),
            "may_grant": can_grant(request.user, course),
            "grant_form": GrantForm(),
        },
    )  # fmt: skip


@instructor_required
def module_page(request, slug: str, module_dir: str):
    course = _course(request, slug)
    module = _module_row(course, module_dir)
    labs = list(module.labs.order_by("order", "slug")) if module else []
    return _editor(
        request, course, module_dir, "authoring/module.html",
        {"module": module, "module_dir": module_dir, "labs": labs,
         "data": {"module_dir": module_dir}},
    )  # fmt: skip


@instructor_required
def lab_page(request, slug: str, module_dir: str, lab_slug: str):
    course = _course(request, slug)
    module = _module_row(course, module_dir)
    lab = module.labs.filter(slug=lab_slug).first() if module else None
    session, urls = None, {}
    if lab is not None:
        # The author's own session: the one Try it runs in.
        live = LabSession.objects.filter(owner=request.user, lab=lab, state__in=LIVE_STATES)
        session = live.first()
        urls = {
            "try": reverse("authoring:try", args=[lab.pk]),
            "validate": reverse("authoring:validate", args=[lab.pk]),
            "start": reverse("api:start", args=[lab.pk]),
            "lab_page": lab.get_absolute_url(),
        }
    data = {
        "module_dir": module_dir,
        "lab_id": lab.pk if lab else None,
        "session_url": reverse("api:session", args=[session.pk]) if session else "",
    }
    return _editor(
        request, course, f"{module_dir}/labs/{lab_slug}", "authoring/lab.html",
        {"module": module, "module_dir": module_dir, "lab": lab, "session": session,
         "urls": urls, "data": data},
    )  # fmt: skip


def _module_row(course: Course, module_dir: str) -> Module | None:
    for module in course.modules.all():
        if Path(module.source_dir).name == module_dir:
            return module
    return None


@instructor_required
def revisions(request, slug: str):
    course = _course(request, slug)
    path = request.GET.get("path", "")
    try:
        kind = kind_of(path)
    except BadPath:
        raise Http404("no such unit") from None
    unit_dir = course_dir(course.slug) / path
    if unit_dir.is_dir():
        editing.load(course, path)  # a change on disk becomes a revision first
    rows = list(
        Revision.objects.filter(course=course, path=path)
        .select_related("author")
        .order_by("-pk")[: REVISIONS_SHOWN + 1]
    )
    entries = []
    for index, revision in enumerate(rows[:REVISIONS_SHOWN]):
        previous = rows[index + 1] if index + 1 < len(rows) else history.previous_of(revision)
        entries.append({"revision": revision, "diff": history.diff(revision, previous)})
    return render(
        request,
        "authoring/revisions.html",
        {"course": course, "path": path, "kind": kind, "entries": entries,
         "editor_url": _editor_url(course, path)},
    )  # fmt: skip


def _editor_url(course: Course, path: str) -> str:
    parts = path.split("/") if path else []
    kind = kind_of(path)
    if kind == LAB:
        return reverse("authoring:lab", args=[course.slug, parts[0], parts[2]])
    if kind == MODULE:
        return reverse("authoring:module", args=[course.slug, parts[0]])
    return reverse("authoring:course", args=[course.slug])


@require_POST
@instructor_required
def restore(request, pk: int):
    revision = get_object_or_404(Revision.objects.select_related("course"), pk=pk)
    require_edit(request.user, revision.course)
    try:
        new = editing.restore(request.user, revision)
    except store.Rejected as exc:
        messages.error(request, _("Not restored: %(e)s") % {"e": exc.message})
    else:
        if new is None:
            messages.info(request, _("The files already are as in that revision."))
        else:
            messages.success(request, _("Restored. This is now the newest revision."))
    url = reverse("authoring:revisions", args=[revision.course.slug])
    return redirect(f"{url}?path={revision.path}")


@instructor_required
def export(request, slug: str):
    course = _course(request, slug)
    path = request.GET.get("path", "")
    try:
        if kind_of(path) == MODULE:
            raise BadPath(path)  # a module is exported with its course
    except BadPath:
        raise Http404("no such unit") from None
    unit = _unit(course, path)
    top = unit.dir.name
    with store.course_lock(course.slug):
        data = archive.export_zip(unit.dir, top)
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{top}.zip"'
    return response


@require_POST
@instructor_required
def import_archive(request):
    modules = Module.objects.filter(course__in=editable_courses(request.user))
    form = ImportForm(request.POST, request.FILES, modules=modules.select_related("course"))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("authoring:index")
    upload_file = form.cleaned_data["archive"]
    fallback = Path(upload_file.name).stem.lower()
    try:
        if upload_file.size > archive.MAX_TOTAL_BYTES + archive.MAX_FILE_BYTES:
            raise archive.Refused(_("This archive is too large."))
        upload = archive.read_zip(upload_file, fallback)
        return _place(request, upload, form.cleaned_data["module"])
    except (archive.Refused, store.Rejected) as exc:
        messages.error(request, _("Not imported: %(e)s") % {"e": getattr(exc, "message", exc)})
    except PermissionDenied as exc:
        messages.error(request, str(exc) or _("You may not edit that course."))
    return redirect("authoring:index")


def _place(request, upload: archive.Upload, module: Module | None):
    if upload.kind == "course":
        course, created = importing.import_course(request.user, upload)
        note = _("Course %(name)s imported.") if created else _("Course %(name)s replaced.")
        messages.success(request, note % {"name": upload.name})
        return redirect("authoring:course", course.slug)
    if module is None:
        raise archive.Refused(_("Choose the module the lab goes into."))
    course, path = importing.import_lab(request.user, upload, module)
    messages.success(request, _("Lab %(name)s imported.") % {"name": upload.name})
    return redirect(_editor_url(course, path))


@require_POST
@instructor_required
def grant(request, slug: str):
    course = get_object_or_404(Course, slug=slug)
    if not can_grant(request.user, course):
        raise PermissionDenied
    form = GrantForm(request.POST)
    if form.is_valid():
        user = form.cleaned_data["username"]
        _row, created = CourseRole.objects.get_or_create(
            course=course, user=user, defaults={"role": CourseRoleKind.EDITOR}
        )
        if created:
            messages.success(request, _("%(user)s may now edit this course.") % {"user": user})
        else:
            messages.info(request, _("%(user)s may edit this course already.") % {"user": user})
    else:
        for error in form.errors.get("username", []):
            messages.error(request, error)
    return redirect("authoring:course", course.slug)


@require_POST
@instructor_required
def revoke(request, slug: str, pk: int):
    course = get_object_or_404(Course, slug=slug)
    if not can_grant(request.user, course):
        raise PermissionDenied
    role = get_object_or_404(CourseRole, pk=pk, course=course)
    if role.role == CourseRoleKind.OWNER:
        messages.error(request, _("An owner cannot be removed here; ask an administrator."))
    else:
        role.delete()
        messages.success(
            request, _("%(user)s may no longer edit this course.") % {"user": role.user}
        )
    return redirect("authoring:course", course.slug)


def lab_of(request, lab_id: int) -> Lab:
    """The lab row, if the user may edit its course (sync: callers wrap it)."""
    lab = get_object_or_404(Lab.objects.select_related("module__course"), pk=lab_id)
    if not can_edit(request.user, lab.module.course):
        raise PermissionDenied
    return lab


@require_POST
@instructor_required
def create_unit(request, slug: str):
    """New module (no ``module_dir``) or new lab (in ``module_dir``), then its editor."""
    course = _course(request, slug)
    module_dir = request.POST.get("module_dir") or None
    name = request.POST.get("slug", "").strip()
    title = request.POST.get("title", "").strip() or name
    title_en = request.POST.get("title_en", "").strip() or title
    try:
        if module_dir is not None:
            _unit(course, module_dir)
        path = editing.create(
            request.user, course, module_dir=module_dir, slug=name, title=title, title_en=title_en
        )
    except store.Rejected as exc:
        messages.error(request, _("Not created: %(e)s") % {"e": exc.message})
        back = "authoring:module" if module_dir else "authoring:course"
        return redirect(back, *([course.slug, module_dir] if module_dir else [course.slug]))
    messages.success(request, _("Created."))
    return redirect(_editor_url(course, path))
