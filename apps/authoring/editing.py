"""What the editor pages do to a unit: load it from disk, save it, restore a revision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import yaml
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from apps.audit.log import record
from apps.audit.models import Action
from apps.authoring import history, store
from apps.authoring.models import Revision, RevisionSource
from apps.authoring.units import Unit, course_dir, digest
from apps.courses.loader import LAB_SLUG, NUMBERED
from apps.courses.models import Course


@dataclass(frozen=True)
class Loaded:
    files: dict[str, str]
    digest: str


def load(course: Course, path: str) -> Loaded:
    """The unit as it is on disk. A change made there since the last revision becomes a
    revision "on disk" first, so the history shows it and a restore can undo it."""
    unit = Unit(course_dir(course.slug), path)
    with store.course_lock(course.slug):
        history.note_disk_changes(course, [unit])
        files = unit.files()
    return Loaded(files=files, digest=digest(files))


def save(
    user, course: Course, path: str, base_digest: str, files: Mapping[str, str | None],
    message: str = "",
) -> tuple[Revision | None, str]:  # fmt: skip
    """Write the browser's ``files`` ({path in the unit: text, or None to delete}) if the
    unit is still as the browser loaded it (``base_digest``); else Conflict. Rejected if
    the loader refuses the result (nothing is written then). Returns the new revision (None
    if nothing changed) and the unit's digest now."""
    unit = Unit(course_dir(course.slug), path)
    changes = {
        unit.course_path(unit.check_relpath(relpath)): None if text is None else text.encode()
        for relpath, text in files.items()
    }
    with store.course_lock(course.slug):
        history.note_disk_changes(course, [unit])
        if (current := unit.digest()) != base_digest:
            raise store.Conflict(current)
        _course, revisions = store.commit(
            course.slug, changes, units=[unit], author=user, source=RevisionSource.EDITOR,
            message=message.strip()[:300],
        )  # fmt: skip
        revision = revisions[0] if revisions else None
        if revision is not None:
            record(user, Action.LAB_EDITED, target=unit_label(course, path), course=course.slug,
                   path=path, revision=revision.pk, files=sorted(files))  # fmt: skip
        return revision, unit.digest()


def restore(user, revision: Revision) -> Revision | None:
    """Write ``revision``'s files back as a new revision (None if the disk already holds
    them). Files of the unit that the revision did not have are removed."""
    course = revision.course
    unit = Unit(course_dir(course.slug), revision.path)
    with store.course_lock(course.slug):
        history.note_disk_changes(course, [unit])
        current = unit.files()
        changes: dict[str, bytes | None] = {
            unit.course_path(rel): text.encode()
            for rel, text in revision.files.items()
            if current.get(rel) != text
        }
        changes |= {unit.course_path(rel): None for rel in current if rel not in revision.files}
        when = date_format(localtime(revision.created_at), "DATETIME_FORMAT")
        _course, revisions = store.commit(
            course.slug, changes, units=[unit], author=user, source=RevisionSource.RESTORE,
            message=_("restored the revision of %(when)s") % {"when": when},
        )  # fmt: skip
        new = revisions[0] if revisions else None
        if new is not None:
            record(user, Action.LAB_RESTORED, target=unit_label(course, revision.path),
                   course=course.slug, path=revision.path, restored=revision.pk,
                   revision=new.pk)  # fmt: skip
        return new


def create(
    user, course: Course, *, module_dir: str | None, slug: str, title: str, title_en: str
) -> str:
    """A new module (``module_dir`` None) or a new lab in ``module_dir``, with the fewest
    files the loader takes: a planned lab, a module with an empty lesson. Returns its unit
    path. Rejected if the name is taken or not a folder name."""
    folder = course_dir(course.slug)
    if not LAB_SLUG.match(slug):
        raise store.Rejected(_("%(name)s: use lowercase letters, digits and '-'") % {"name": slug})
    with store.course_lock(course.slug):
        if module_dir is None:
            numbers = [int(m[1]) for p in folder.iterdir() if (m := NUMBERED.match(p.name))]
            path = f"{max(numbers, default=0) + 1:02d}-{slug}"
            meta = {"title": title, "title_en": title_en}
            files = {"module.yaml": _yaml(meta), "lesson.md": f"# {title}\n"}
        else:
            path = f"{module_dir}/labs/{slug}"
            environment = {"kind": "container", "image": "labsite/base"}
            meta = {"title": title, "title_en": title_en, "status": "planned"}
            files = {"lab.yaml": _yaml(meta | {"environment": environment})}
        unit = Unit(folder, path)
        if unit.dir.exists():
            raise store.Rejected(_("%(path)s exists already.") % {"path": path})
        changes = {unit.course_path(rel): data.encode() for rel, data in files.items()}
        store.commit(
            course.slug, changes, units=[unit], author=user, source=RevisionSource.EDITOR,
            message=_("created"),
        )  # fmt: skip
    record(user, Action.LAB_CREATED, target=unit_label(course, path), course=course.slug,
           path=path, kind="module" if module_dir is None else "lab")  # fmt: skip
    return path


def unit_label(course: Course, path: str) -> str:
    """A unit as the audit log names it: the course's slug and the unit's folder."""
    return f"{course.slug}/{path}" if path else course.slug


def _yaml(data: dict) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
