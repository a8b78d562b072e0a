"""Demo accounts (student, teacher, admin) and a demo class. Passwords are generated once,
kept in var/demo-accounts.txt, and printed every run so the README's command can show them."""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.accounts.roles import Role, assign_role
from apps.courses.models import Course
from apps.teaching.models import Classroom, Enrollment

DEMO = [("student", Role.STUDENT), ("teacher", Role.INSTRUCTOR), ("admin", Role.ADMIN)]


class Command(BaseCommand):
    help = "Create demo accounts and a demo class (idempotent); print their passwords."

    def handle(self, *args, **options):
        path = Path(settings.VAR_DIR) / "demo-accounts.txt"
        known = dict(
            line.split(" ", 1) for line in path.read_text().splitlines() if " " in line
        ) if path.exists() else {}  # fmt: skip
        User = get_user_model()
        users = {}
        for username, role in DEMO:
            user = User.objects.filter(username=username).first()
            if user is None or username not in known:
                known[username] = secrets.token_urlsafe(9)
                user = user or User(username=username)
                user.set_password(known[username])
                user.is_superuser = role == Role.ADMIN
                user.save()
            assign_role(user, role)
            users[username] = user
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{u} {p}\n" for u, p in known.items()))
        path.chmod(0o600)
        classroom, _ = Classroom.objects.get_or_create(
            name="演示班级 Demo class", defaults={"course": Course.objects.first()}
        )
        classroom.instructors.add(users["teacher"])
        Enrollment.objects.get_or_create(classroom=classroom, student=users["student"])
        self.stdout.write("Demo accounts (also in var/demo-accounts.txt):")
        for username, role in DEMO:
            self.stdout.write(f"  {role.value:<10} {username:<8} password: {known[username]}")
        self.stdout.write(f"  demo class enrollment code: {classroom.enrollment_code}")
