"""Load every course under CONTENT_DIR into the database. Safe to run again after an edit."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.courses.loader import ContentError, read_course
from apps.courses.sync import SyncReport, sync_course


class Command(BaseCommand):
    help = "Load the course files under content/ into the database (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--dir", type=Path, default=None, help="content folder")

    def handle(self, *args, **options):
        root: Path = options["dir"] or Path(settings.CONTENT_DIR)
        course_dirs = sorted(p.parent for p in root.glob("*/course.yaml"))
        if not course_dirs:
            raise CommandError(f"no course found: {root}/*/course.yaml")
        try:
            # Read and check everything first: a bad file stops the load before any write.
            courses = [read_course(path) for path in course_dirs]
        except ContentError as exc:
            raise CommandError(str(exc)) from None
        report = SyncReport()
        with transaction.atomic():
            for course in courses:
                sync_course(course, report)
        self.stdout.write(
            f"content loaded from {root}: {len(report.created)} created, "
            f"{len(report.updated)} updated, {len(report.removed)} removed"
        )
        for line in report.removed:
            self.stdout.write(f"  removed {line}")
