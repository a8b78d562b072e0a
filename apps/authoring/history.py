"""Revisions of a unit: recording them, diffing one against the one before."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.translation import gettext as _

from apps.authoring.models import Revision, RevisionSource
from apps.authoring.units import Unit, digest
from apps.courses.models import Course


def latest(course: Course, path: str) -> Revision | None:
    # pk, not created_at: two revisions may share a timestamp, never a pk.
    return Revision.objects.filter(course=course, path=path).order_by("-pk").first()


def record(
    course: Course, unit: Unit, *, author, source: str, message: str = ""
) -> Revision | None:
    """A revision of ``unit`` as it is on disk now, unless the latest one already is."""
    files = unit.files()
    fingerprint = digest(files)
    previous = latest(course, unit.path)
    if previous is not None and previous.digest == fingerprint:
        return None
    return Revision.objects.create(
        course=course, path=unit.path, author=author, source=source, message=message,
        files=files, digest=fingerprint,
    )  # fmt: skip


def note_disk_changes(course: Course, units: Iterable[Unit]) -> list[Revision]:
    """Record what changed on disk since the last revision, authored "on disk", so that a
    save, an import or a restore never loses an edit made outside the browser."""
    found = []
    for unit in units:
        first = latest(course, unit.path) is None
        message = _("as first found on disk") if first else ""
        if revision := record(course, unit, author=None, source=RevisionSource.DISK,
                              message=message):  # fmt: skip
            found.append(revision)
    return found


@dataclass(frozen=True)
class FileDiff:
    path: str
    #: "added", "removed" or "changed"
    change: str
    lines: list[str]


def previous_of(revision: Revision) -> Revision | None:
    return (
        Revision.objects.filter(course=revision.course_id, path=revision.path, pk__lt=revision.pk)
        .order_by("-pk")
        .first()
    )


def diff(revision: Revision, previous: Revision | None) -> list[FileDiff]:
    """What ``revision`` changed, file by file, as unified diffs (3 lines of context)."""
    before = previous.files if previous else {}
    after = revision.files
    diffs = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        change = "added" if old is None else "removed" if new is None else "changed"
        lines = difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            (new or "").splitlines(keepends=True),
            fromfile=f"a/{path}" if old is not None else "/dev/null",
            tofile=f"b/{path}" if new is not None else "/dev/null",
        )
        diffs.append(FileDiff(path, change, [line.rstrip("\n") for line in lines]))
    return diffs
