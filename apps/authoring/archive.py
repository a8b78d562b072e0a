"""Zip archives in and out: an upload read with every path and size checked; an export
that holds the exact bytes of the files, in a stable order with fixed timestamps (so two
exports of the same files are the same bytes, and an export of an import is the import).

A folder picked in the browser (``<input webkitdirectory>``) is zipped there and arrives
here like any other zip.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext as _

from apps.authoring.units import walk
from apps.courses.loader import LAB_SLUG

MAX_FILES = 1000
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024
#: Files the loader reads as text: they must be UTF-8. Anything else (a PNG) is kept as bytes.
TEXT_SUFFIXES = {".md", ".yaml", ".yml", ".check", ".solve", ".sh", ".txt"}
TEXT_NAMES = {"Dockerfile"}
#: The time stamp of every exported entry (zip's epoch), so exports are reproducible.
EPOCH = (1980, 1, 1, 0, 0, 0)
DRIVE = re.compile(r"^[A-Za-z]:")


class Refused(ValueError):
    """The upload cannot be imported; the message says which file and why."""


@dataclass
class Upload:
    #: "course" or "lab"
    kind: str
    #: The course's or lab's folder name.
    name: str
    #: {path inside that folder: bytes}
    files: dict[str, bytes]


def read_zip(data: io.BufferedIOBase | bytes, fallback_name: str) -> Upload:
    """The course or lab in a zip. Its files may sit at the top or in one folder (then
    named by it; else by ``fallback_name``, the zip's own name)."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise Refused(_("This is not a zip archive.")) from None
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        if len(entries) > MAX_FILES:
            raise Refused(_("More than %(n)d files.") % {"n": MAX_FILES})
        files: dict[str, bytes] = {}
        total = 0
        for info in entries:
            name = clean_path(info.filename)
            _check_type(info, name)
            data_ = _read_entry(archive, info, name)
            total += len(data_)
            if total > MAX_TOTAL_BYTES:
                raise Refused(_("More than %(n)d MiB in all.") % {"n": MAX_TOTAL_BYTES >> 20})
            if name in files:
                raise Refused(_("%(path)s: twice in the archive") % {"path": name})
            files[name] = data_
    return classify(files, fallback_name)


def clean_path(name: str) -> str:
    """A relative path with '/' separators, or Refused: absolute paths, '..' and
    backslashes (which some tools use for folders and others in names) are not taken."""
    if name.startswith("/") or DRIVE.match(name) or "\\" in name or "\0" in name:
        raise Refused(_("%(path)s: not a relative path") % {"path": name})
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Refused(_("%(path)s: a path with '..' is not allowed") % {"path": name})
    if not parts:
        raise Refused(_("%(path)s: not a file name") % {"path": name})
    return "/".join(parts)


def _check_type(info: zipfile.ZipInfo, name: str) -> None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise Refused(_("%(path)s: symbolic links are not allowed") % {"path": name})
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        raise Refused(_("%(path)s: not a regular file") % {"path": name})
    if info.file_size > MAX_FILE_BYTES:
        raise Refused(_too_big(name))


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    try:
        with archive.open(info) as handle:
            # The header's size may lie: never read more than the limit.
            data = handle.read(MAX_FILE_BYTES + 1)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError):
        raise Refused(_("%(path)s: cannot be read from the archive") % {"path": name}) from None
    if len(data) > MAX_FILE_BYTES:
        raise Refused(_too_big(name))
    if is_text(name):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(_("%(path)s: not UTF-8 text") % {"path": name}) from None
    return data


def _too_big(name: str) -> str:
    return _("%(path)s: larger than %(n)d MiB") % {"path": name, "n": MAX_FILE_BYTES >> 20}


def is_text(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base in TEXT_NAMES or Path(base).suffix.lower() in TEXT_SUFFIXES


def classify(files: dict[str, bytes], fallback_name: str) -> Upload:
    if not files:
        raise Refused(_("The archive holds no files."))
    tops = {path.split("/", 1)[0] for path in files}
    name = fallback_name
    if len(tops) == 1 and all("/" in path for path in files):
        name = tops.pop()
        files = {path.split("/", 1)[1]: data for path, data in files.items()}
    if "course.yaml" in files:
        kind = "course"
    elif "lab.yaml" in files:
        kind = "lab"
    else:
        raise Refused(
            _("Neither course.yaml nor lab.yaml is at the top of the archive (or of its folder).")
        )
    if not LAB_SLUG.match(name):
        raise Refused(
            _("%(name)s: a folder name must be lowercase letters, digits and '-'") % {"name": name}
        )
    return Upload(kind=kind, name=name, files=files)


def export_zip(directory: Path, top: str) -> bytes:
    """Every file under ``directory``, as ``top/<path>``, sorted by name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relpath, path in sorted(walk(directory)):
            info = zipfile.ZipInfo(f"{top}/{relpath}", date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
