"""The editable units of a course folder and their text files.

A unit is what one editor page edits and one revision records:

- the course's own files (``course.yaml``): path ``""``;
- a module's own files (``module.yaml``, ``lesson.md``): path ``"01-basics"``;
- a lab's whole folder (``lab.yaml``, ``setup.sh``, ``steps/…``): ``"01-basics/labs/hello"``.

A unit's snapshot holds its UTF-8 files only (binary files such as diagrams are never edited
in the browser, so history leaves them alone) and no hidden files (an editor's swap files).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from apps.courses.loader import LAB_SLUG, NUMBERED

COURSE, MODULE, LAB = "course", "module", "lab"
#: What a file name in a unit edited from the browser may look like, per path component.
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


class BadPath(ValueError):
    """A path that is not one of a unit's (or leads out of it)."""


def course_dir(slug: str) -> Path:
    return Path(settings.CONTENT_DIR) / slug


def kind_of(path: str) -> str:
    """The kind of unit at ``path`` (relative to the course folder), or BadPath."""
    parts = path.split("/") if path else []
    if not parts:
        return COURSE
    if not NUMBERED.match(parts[0]):
        raise BadPath(f"{path!r} is not a unit of a course")
    if len(parts) == 1:
        return MODULE
    if len(parts) == 3 and parts[1] == "labs" and LAB_SLUG.match(parts[2]):
        return LAB
    raise BadPath(f"{path!r} is not a unit of a course")


@dataclass(frozen=True)
class Unit:
    course_dir: Path
    path: str

    def __post_init__(self) -> None:
        kind_of(self.path)

    @property
    def kind(self) -> str:
        return kind_of(self.path)

    @property
    def dir(self) -> Path:
        return self.course_dir / self.path if self.path else self.course_dir

    def files(self) -> dict[str, str]:
        return snapshot(self.dir, recursive=self.kind == LAB)

    def digest(self) -> str:
        return digest(self.files())

    def course_path(self, relpath: str) -> str:
        """``relpath`` (inside the unit) as a path relative to the course folder."""
        return f"{self.path}/{relpath}" if self.path else relpath

    def check_relpath(self, relpath: str) -> str:
        """``relpath`` if a browser may write it in this unit, else BadPath. Course and
        module units hold files only at their top; a lab's may be in folders."""
        parts = relpath.split("/")
        if not relpath or not all(SAFE_NAME.match(p) for p in parts):
            raise BadPath(f"{relpath!r} is not a file name this editor writes")
        if self.kind != LAB and len(parts) > 1:
            raise BadPath(f"{relpath!r}: a {self.kind} holds no folders")
        if self.kind == LAB and parts[0] == "labs":
            raise BadPath(f"{relpath!r}: a lab holds no labs")
        return relpath


def snapshot(directory: Path, recursive: bool) -> dict[str, str]:
    """The UTF-8 files under ``directory`` as {relative path: text}, sorted."""
    found: dict[str, str] = {}
    for relpath, path in sorted(walk(directory, recursive, hidden=False)):
        try:
            found[relpath] = path.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
    return found


def walk(directory: Path, recursive: bool = True, hidden: bool = True):
    """(relative path, path) of every regular file under ``directory`` (symlinked folders
    are not followed). Without ``hidden``, names starting with '.' or ending in '~' are left
    out, folders included."""
    if not directory.is_dir():
        return
    for root, dirs, names in os.walk(directory):
        base = Path(root)
        if not recursive:
            dirs.clear()
        if not hidden:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not hidden and (name.startswith(".") or name.endswith("~")):
                continue
            path = base / name
            if path.is_file():
                yield path.relative_to(directory).as_posix(), path


def digest(files: Mapping[str, str]) -> str:
    """A fingerprint of a snapshot: the browser sends it back as the base of its save."""
    h = hashlib.sha256()
    for relpath in sorted(files):
        data = files[relpath].encode("utf-8")
        h.update(f"{relpath}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def units_of(course_folder: Path) -> list[Unit]:
    """Every unit present in a course folder: the course, its modules, their labs."""
    units = [Unit(course_folder, "")]
    if not course_folder.is_dir():
        return units
    for module in sorted(course_folder.iterdir()):
        if not (NUMBERED.match(module.name) and module.is_dir()):
            continue
        units.append(Unit(course_folder, module.name))
        labs = module / "labs"
        if labs.is_dir():
            for lab in sorted(labs.iterdir()):
                if lab.is_dir() and LAB_SLUG.match(lab.name):
                    units.append(Unit(course_folder, f"{module.name}/labs/{lab.name}"))
    return units
