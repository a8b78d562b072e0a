"""Writing a course's files from the browser, safely.

Every write goes the same way (``commit``): the changes are first applied to a temporary
copy of the course and read there with the loader, so a file the loader refuses never
reaches CONTENT_DIR; then each changed file is swapped in (written beside itself and
renamed over the old one, so nobody ever reads half a file); then, in one transaction, the
course is read again from its real folder, synced into the database and the revisions are
recorded. Should that fail, the old bytes are put back.

Writers of one course take its lock (a file lock under VAR_DIR, so it holds across web
processes) around "compare with the disk, then write".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from apps.authoring import history
from apps.authoring.models import Revision
from apps.authoring.units import Unit, units_of
from apps.courses.loader import ContentError, read_course
from apps.courses.models import Course
from apps.courses.sync import SyncReport, sync_course

#: {path relative to the course folder: new bytes, or None to delete the file}
Changes = Mapping[str, bytes | None]


class Rejected(Exception):
    """The loader refused the files as they would be; ``message`` is its ``path:line: …``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Conflict(Exception):
    """The files changed on disk since the browser loaded them."""

    def __init__(self, disk_digest: str) -> None:
        super().__init__(disk_digest)
        self.disk_digest = disk_digest


@contextlib.contextmanager
def course_lock(slug: str) -> Iterator[None]:
    folder = Path(settings.VAR_DIR) / "authoring-locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{slug}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def effective(course_folder: Path, changes: Changes) -> dict[str, bytes | None]:
    """The changes that change something: not a write of the bytes already there, nor a
    delete of a file that is not."""
    kept: dict[str, bytes | None] = {}
    for relpath, data in changes.items():
        current = _read(course_folder / relpath)
        if current != data:
            kept[relpath] = data
    return kept


def commit(
    slug: str,
    changes: Changes,
    *,
    units: Iterable[Unit] | None,
    author,
    source: str,
    message: str = "",
) -> tuple[Course | None, list[Revision]]:
    """Apply ``changes`` to course ``slug`` (whose lock the caller holds), re-sync it and
    record a revision of each of ``units`` that changed (all of the course's if None).
    Raises Rejected, leaving the files as they were, if the loader refuses the result.
    Changes that change nothing write nothing and record nothing."""
    folder = Path(settings.CONTENT_DIR) / slug
    for relpath in changes:
        if relpath.startswith("/") or not all(p not in ("", ".", "..") for p in relpath.split("/")):
            raise Rejected(_("%(path)s: not a path inside the course") % {"path": relpath})
    changes = effective(folder, changes)
    if not changes:
        return Course.objects.filter(slug=slug).first(), []
    check_in_copy(folder, changes)
    before = {relpath: _read(folder / relpath) for relpath in changes}
    try:
        write(folder, changes)
        with transaction.atomic():
            course = sync_course(read_course(folder), SyncReport())
            revisions = [
                revision
                for unit in (units if units is not None else units_of(folder))
                if (revision := history.record(course, unit, author=author, source=source,
                                               message=message))
            ]  # fmt: skip
    except ContentError as exc:
        write(folder, before)
        raise Rejected(describe(exc, Path(settings.CONTENT_DIR))) from None
    except BaseException:
        write(folder, before)
        raise
    return course, revisions


def check_in_copy(folder: Path, changes: Changes) -> None:
    """Read the course as it would be after ``changes``, in a temporary copy."""
    with tempfile.TemporaryDirectory(prefix="labsite-authoring-") as tmp:
        copy = Path(tmp) / folder.name
        if folder.is_dir():
            shutil.copytree(folder, copy, symlinks=True)
        else:
            copy.mkdir()
        try:
            write(copy, changes)
        except OSError as exc:
            raise Rejected(_("The files could not be written: %(e)s") % {"e": exc}) from None
        check_folder(copy)


def check_folder(folder: Path) -> None:
    """Rejected with the loader's message if ``folder`` is not a valid course."""
    try:
        read_course(folder)
    except ContentError as exc:
        raise Rejected(describe(exc, folder.parent)) from None


def describe(exc: ContentError, root: Path) -> str:
    """The loader's message with the path relative to the content folder (never a
    temporary copy's): ``testcourse/01-basics/labs/hello/lab.yaml:3: …``."""
    try:
        where = exc.path.relative_to(root).as_posix()
    except ValueError:
        where = exc.path.name
    return f"{where}:{exc.line}: {exc.message}" if exc.line else f"{where}: {exc.message}"


def write(folder: Path, changes: Mapping[str, bytes | None]) -> None:
    """Swap each file in (or delete it), then drop folders a delete left empty."""
    emptied: set[Path] = set()
    for relpath, data in changes.items():
        path = folder / relpath
        if data is None:
            if path.is_file() or path.is_symlink():
                path.unlink()
                emptied.add(path.parent)
        else:
            _replace(path, data)
    for parent in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
        _prune(parent, folder)


def _replace(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.authoring-{secrets.token_hex(4)}")
    try:
        tmp.write_bytes(data)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, path.stat().st_mode & 0o777)  # keep an executable bit
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _prune(directory: Path, stop: Path) -> None:
    # An empty lab or steps folder would be read as a broken lab: remove it.
    while directory != stop and directory.is_relative_to(stop):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None
