"""CSV in and out of a class: the grid as a spreadsheet, and many students' accounts at once.

Teachers open and save these in Excel: files written here are UTF-8 with a byte-order mark
(without it Excel reads Chinese as mojibake), and an upload may carry one, or be Excel's
"CSV" of a Chinese Windows (GB18030). An import is all or nothing: every row is checked
before any account is made.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.roles import Role, assign_role
from apps.teaching.models import Classroom, Enrollment

MAX_IMPORT_ROWS = 1000
MAX_IMPORT_BYTES = 1024 * 1024
BOM = "\ufeff"
#: Generated passwords: no 0/O, 1/l/I, so a student can type one off a printout.
TYPABLE_CHARS = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PASSWORD_LENGTH = 12  # ~70 bits
#: Column names an import understands (compared lower-cased), English and Chinese.
COLUMNS = {
    "username": ("username", "user", "login", "用户名", "账号", "帐号", "学号"),
    "name": ("name", "display name", "full name", "姓名", "名字"),
    "first_name": ("first name", "first_name", "given name", "名"),
    "last_name": ("last name", "last_name", "family name", "surname", "姓"),
    "email": ("email", "e-mail", "mail", "邮箱", "电子邮件", "电子邮箱"),
}
#: Without a header line: username, name, email.
POSITIONAL = ("username", "name", "email")


# -- export ------------------------------------------------------------------------------------


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
    writer.writerow([_cell(h) for h in header])
    for student in grid["students"]:
        row = [_cell(student["username"]), _cell(student["name"]), _when(student["last_active"])]
        for lab in grid["labs"]:
            cell = student["labs"][str(lab["id"])]
            row += [f"{len(cell['passed'])}/{len(lab['steps'])}", round(cell["seconds_spent"] / 60)]
        writer.writerow(row)
    return BOM + out.getvalue()


def _when(iso: str | None) -> str:
    """Local time as Excel reads a date: 2026-03-02 14:05."""
    if not iso:
        return ""
    return timezone.localtime(datetime.fromisoformat(iso)).strftime("%Y-%m-%d %H:%M")


def _cell(text: str) -> str:
    """A spreadsheet would run a cell that starts like a formula: make it text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


# -- import ------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    errors: list[str] = field(default_factory=list)
    created: list[tuple[str, str]] = field(default_factory=list)  # (username, password)


@dataclass
class _Row:
    line: int
    username: str
    first_name: str
    last_name: str
    email: str


def import_students(raw: bytes, classroom: Classroom) -> ImportResult:
    """Create a student account per row and enroll it in ``classroom``; on any bad row
    create nothing and say what is wrong with each, in line order. Columns: by a header
    line's names (COLUMNS), else username, name, email."""
    result = ImportResult()
    lines = _lines(raw, result)
    if result.errors:
        return result
    problems: list[tuple[int, str]] = []
    rows = _parse(lines, problems)
    problems += _taken(rows)
    if problems or not rows:
        result.errors = [
            _("Line %(n)d: %(problem)s") % {"n": line, "problem": problem}
            for line, problem in sorted(problems, key=lambda p: p[0])
        ] or [_("The file has no students in it.")]
        return result
    users = get_user_model()
    with transaction.atomic():
        for row in rows:
            password = new_password()
            user = users.objects.create_user(
                username=row.username, password=password, email=row.email,
                first_name=row.first_name, last_name=row.last_name,
            )  # fmt: skip
            assign_role(user, Role.STUDENT)
            Enrollment.objects.create(classroom=classroom, student=user)
            result.created.append((row.username, password))
    return result


def new_password() -> str:
    return "".join(secrets.choice(TYPABLE_CHARS) for _ in range(PASSWORD_LENGTH))


def passwords_csv(created: list[tuple[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["username", "password"])
    writer.writerows(created)
    return BOM + out.getvalue()


def _lines(raw: bytes, result: ImportResult) -> list[tuple[int, list[str]]]:
    """The file's non-blank lines, numbered as a spreadsheet numbers them."""
    if len(raw) > MAX_IMPORT_BYTES:
        result.errors.append(_("The file is larger than 1 MiB."))
        return []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:  # Excel's plain "CSV" on a Chinese Windows
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            result.errors.append(_("The file is not UTF-8 text. Save it as “CSV UTF-8”."))
            return []
    try:
        lines = [
            (n, [cell.strip() for cell in row])
            for n, row in enumerate(csv.reader(io.StringIO(text)), start=1)
            if any(cell.strip() for cell in row)
        ]
    except csv.Error:
        result.errors.append(_("The file is not a CSV file."))
        return []
    if not lines:
        result.errors.append(_("The file has no students in it."))
    elif len(lines) > MAX_IMPORT_ROWS + 1:
        result.errors.append(_("At most %(n)d students at once.") % {"n": MAX_IMPORT_ROWS})
    return lines


def _header(cells: list[str]) -> list[str | None] | None:
    """The columns a header line names, or None if the line is not a header."""
    known = {alias: key for key, aliases in COLUMNS.items() for alias in aliases}
    names = [known.get(cell.lower()) for cell in cells]
    return names if "username" in names else None


def _parse(lines: list[tuple[int, list[str]]], problems: list[tuple[int, str]]) -> list[_Row]:
    """The rows without a problem; the problems of the others, by line."""
    columns = _header(lines[0][1])
    if columns is not None:
        lines = lines[1:]
    else:
        columns = list(POSITIONAL)
    rows, seen = [], set()
    for line, cells in lines:
        values = {key: "" for key in COLUMNS}
        for key, cell in zip(columns, cells, strict=False):
            if key is not None:
                values[key] = cell
        found = _problems(values, seen)
        problems += [(line, problem) for problem in found]
        seen.add(values["username"].lower())
        if not found:
            rows.append(_Row(line, values["username"], *_names(values), values["email"]))
    return rows


def _problems(values: dict[str, str], seen: set[str]) -> list[str]:
    username = values["username"]
    if not username:
        return [_("the username is missing.")]
    problems = []
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        problems.append(
            _("“%(u)s” is not a valid username (letters, digits and @ . + - _ only).")
            % {"u": username}
        )
    if len(username) > 150:
        problems.append(_("the username is longer than 150 characters."))
    if username.lower() in seen:
        problems.append(_("“%(u)s” appears twice in the file.") % {"u": username})
    if values["email"]:
        try:
            validate_email(values["email"])
        except ValidationError:
            problems.append(_("“%(e)s” is not an email address.") % {"e": values["email"]})
    if any(len(values[k]) > 150 for k in ("name", "first_name", "last_name")):
        problems.append(_("the name is longer than 150 characters."))
    return problems


def _names(values: dict[str, str]) -> tuple[str, str]:
    """(first_name, last_name). Django shows "first last"; a Chinese name is family name
    first with no space, so a name given in separate 姓/名 columns is kept whole."""
    first, last = values["first_name"], values["last_name"]
    if first or last:
        if _is_cjk(first + last):
            return (last + first)[:150], ""
        return first, last
    name = values["name"]
    if _is_cjk(name):
        return name, ""
    first, _sep, last = name.partition(" ")
    return first, last.strip()


def _is_cjk(text: str) -> bool:
    return any("\u2e80" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)


def _taken(rows: list[_Row]) -> list[tuple[int, str]]:
    """Usernames already in use (compared without case, as the account form does)."""
    wanted = [row.username.lower() for row in rows]
    taken = set(
        get_user_model()
        .objects.annotate(lowered=Lower("username"))
        .filter(lowered__in=wanted)
        .values_list("lowered", flat=True)
    )
    return [
        (row.line, _("the username “%(u)s” is taken.") % {"u": row.username})
        for row in rows
        if row.username.lower() in taken
    ]
