"""Placing an imported course or lab into CONTENT_DIR.

A new course is written into a hidden folder inside CONTENT_DIR, read there by the loader,
and renamed into place (one atomic rename); its importer becomes its owner. A course or a
lab that exists already is replaced file by file through ``store.commit``, like a save:
checked in a copy first, files not in the import removed, every unit that changed recorded
as a revision. Hidden files already there are left alone.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _

from apps.audit.log import record
from apps.audit.models import Action
from apps.authoring import history, store
from apps.authoring.archive import Refused, Upload
from apps.authoring.models import CourseRole, CourseRoleKind, RevisionSource
from apps.authoring.permissions import can_edit
from apps.authoring.units import Unit, course_dir, units_of, walk
from apps.courses.loader import ContentError, read_course
from apps.courses.models import Course, Module
from apps.courses.sync import SyncReport, sync_course


def import_course(user, upload: Upload) -> tuple[Course, bool]:
    """The course of ``upload``, and whether it is new."""
    folder = course_dir(upload.name)
    with store.course_lock(upload.name):
        if not folder.exists():
            course = _new_course(user, upload, folder)
            record(user, Action.COURSE_IMPORTED, target=course.slug, course=course.slug,
                   created=True, files=len(upload.files))  # fmt: skip
            return course, True
        course = Course.objects.filter(slug=upload.name).first()
        if course is None or not can_edit(user, course):
            raise PermissionDenied(
                _("A course named %(name)s exists and you may not edit it.") % {"name": upload.name}
            )
        before = units_of(folder)
        history.note_disk_changes(course, before)
        changes = _replacing(folder, "", upload.files)
        course, _revisions = store.commit(
            upload.name, changes, units=None, author=user, source=RevisionSource.IMPORT,
            message=_("imported"),
        )  # fmt: skip
        # Units the import removed: their last revision is "no files", a way back.
        for unit in before:
            if not unit.dir.exists():
                history.record(course, unit, author=user, source=RevisionSource.IMPORT,
                               message=_("removed by an import"))  # fmt: skip
        record(user, Action.COURSE_IMPORTED, target=course.slug, course=course.slug,
               created=False, files=len(upload.files))  # fmt: skip
        return course, False


def import_lab(user, upload: Upload, module: Module) -> tuple[Course, str]:
    """Put the lab of ``upload`` into ``module`` (replacing one of the same name).
    Returns the course and the lab unit's path."""
    course = module.course
    if not can_edit(user, course):
        raise PermissionDenied
    folder = course_dir(course.slug)
    unit = Unit(folder, f"{Path(module.source_dir).name}/labs/{upload.name}")
    with store.course_lock(course.slug):
        history.note_disk_changes(course, [unit])
        changes = _replacing(folder, unit.path, upload.files)
        store.commit(
            course.slug, changes, units=[unit], author=user, source=RevisionSource.IMPORT,
            message=_("imported"),
        )  # fmt: skip
    record(user, Action.LAB_IMPORTED, target=f"{course.slug}/{unit.path}", course=course.slug,
           path=unit.path, files=len(upload.files))  # fmt: skip
    return course, unit.path


def _replacing(folder: Path, prefix: str, files: dict[str, bytes]) -> dict[str, bytes | None]:
    """Changes making ``folder/prefix`` hold exactly ``files`` (hidden files kept)."""
    base = folder / prefix if prefix else folder
    join = (lambda rel: f"{prefix}/{rel}") if prefix else (lambda rel: rel)
    changes: dict[str, bytes | None] = {join(rel): None for rel, _p in walk(base, hidden=False)}
    changes |= {join(rel): data for rel, data in files.items()}
    return changes


def _new_course(user, upload: Upload, folder: Path) -> Course:
    root = Path(settings.CONTENT_DIR)
    root.mkdir(parents=True, exist_ok=True)
    # Inside CONTENT_DIR, so the final rename stays on one file system; hidden and one level
    # deeper than a course, so load_content never takes it for one.
    with tempfile.TemporaryDirectory(prefix=".import-", dir=root) as tmp:
        staged = Path(tmp) / upload.name
        staged.mkdir()
        try:
            store.write(staged, upload.files)
        except OSError as exc:
            raise Refused(_("The files could not be written: %(e)s") % {"e": exc}) from None
        store.check_folder(staged)
        staged.rename(folder)
    try:
        with transaction.atomic():
            course = sync_course(read_course(folder), SyncReport())
            CourseRole.objects.get_or_create(
                course=course, user=user, defaults={"role": CourseRoleKind.OWNER}
            )
            for unit in units_of(folder):
                history.record(course, unit, author=user, source=RevisionSource.IMPORT,
                               message=_("imported"))  # fmt: skip
    except ContentError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise store.Rejected(store.describe(exc, root)) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return course
