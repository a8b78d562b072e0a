"""CSV in and out of a class: the grid as a spreadsheet, and many students' accounts at once.

Teachers open and save these in Excel: files are UTF-8 with a byte-order mark, and an
upload may carry one. An import is all or nothing: every row is checked first."""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from apps.accounts.roles import Role, assign_role
from apps.teaching.models import Classroom, Enrollment

MAX_IMPORT_ROWS = 1000
MAX_IMPORT_BYTES = 1024 * 1024
BOM = "\ufeff"


def export_grid(grid: dict) -> str:
    """One row per student: steps passed and minutes spent per lab, and when last active."""
    out = io.StringIO()
    writer = csv.writer(out)
    header = [_("Username"), _("Name"), _("Last active")]
    for lab in grid["labs"]:
        header += [
            _("%(lab)s: steps passed") % {"lab": lab["title"]},
            _("%(lab)s: minutes") % {"lab": lab["title"]},
        ]
    writer.writerow(header)
    for student in grid["students"]:
        row = [student["username"], student["name"], student["last_active"] or ""]
        for lab in grid["labs"]:
            cell = student["labs"][str(lab["id"])]
            row += [f"{len(cell['passed'])}/{len(lab['steps'])}", round(cell["seconds_spent"] / 60)]
        writer.writerow(row)
    return BOM + out.getvalue()


@dataclass
class ImportResult:
    errors: list[str] = field(default_factory=list)
    created: list[tuple[str, str]] = field(default_factory=list)  # (username, password)


def import_students(raw: bytes, classroom: Classroom) -> ImportResult:
    """Create a student account per row (``username[,name[,email]]``, an optional header
    row) and enroll them in ``classroom``; on any bad row create nothing."""
    result = ImportResult()
    rows = _rows(raw, result)
    if result.errors:
        return result
    users = get_user_model()
    validate = UnicodeUsernameValidator()
    seen: set[str] = set()
    parsed = []
    for line, row in rows:
        username = row[0].strip()
        name = row[1].strip() if len(row) > 1 else ""
        email = row[2].strip() if len(row) > 2 else ""
        where = _("Line %(n)d") % {"n": line}
        try:
            validate(username)
        except ValidationError:
            result.errors.append(
                f"{where}: " + _("“%(u)s” is not a valid username.") % {"u": username}
            )
            continue
        if username.lower() in seen:
            result.errors.append(f"{where}: " + _("“%(u)s” appears twice.") % {"u": username})
            continue
        seen.add(username.lower())
        if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            result.errors.append(
                f"{where}: " + _("“%(e)s” is not an email address.") % {"e": email}
            )
            continue
        parsed.append((line, username, name, email))
    wanted = [p[1].lower() for p in parsed]
    taken = set(
        users.objects.annotate(lowered=Lower("username"))
        .filter(lowered__in=wanted)
        .values_list("lowered", flat=True)
    )
    for line, username, _name, _email in parsed:
        if username.lower() in taken:
            where = _("Line %(n)d") % {"n": line}
            result.errors.append(
                f"{where}: " + _("the username “%(u)s” is taken.") % {"u": username}
            )
    if result.errors:
        return result
    with transaction.atomic():
        for _line, username, name, email in parsed:
            password = secrets.token_urlsafe(9)
            first, _sep, last = name.partition(" ")
            user = users.objects.create_user(
                username=username, password=password, email=email, first_name=first[:150],
                last_name=last[:150],
            )  # fmt: skip
            assign_role(user, Role.STUDENT)
            Enrollment.objects.create(classroom=classroom, student=user)
            result.created.append((username, password))
    return result


def passwords_csv(created: list[tuple[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["username", "password"])
    writer.writerows(created)
    return BOM + out.getvalue()


def _rows(raw: bytes, result: ImportResult) -> list[tuple[int, list[str]]]:
    if len(raw) > MAX_IMPORT_BYTES:
        result.errors.append(_("The file is larger than 1 MiB."))
        return []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        result.errors.append(_("The file is not UTF-8 text. Save it as “CSV UTF-8”."))
        return []
    rows = [
        (n, row)
        for n, row in enumerate(csv.reader(io.StringIO(text)), start=1)
        if row and any(cell.strip() for cell in row)
    ]
    if rows and rows[0][1][0].strip().lower() in ("username", "用户名", "user"):
        rows = rows[1:]
    if not rows:
        result.errors.append(_("The file has no students in it."))
    elif len(rows) > MAX_IMPORT_ROWS:
        result.errors.append(_("At most %(n)d students at once.") % {"n": MAX_IMPORT_ROWS})
    return rows
