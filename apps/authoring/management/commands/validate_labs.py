"""``manage.py validate_labs [lab-slug …]``: run the lab validator over the labs in
CONTENT_DIR (every ready lab by default), one fresh sandbox per lab, one lab at a time,
and exit 1 if any lab is broken. What it checks: ``apps/authoring/validator.py``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, no_translations

from apps.authoring.validator import LabReport, StepOutcome, validate_lab
from apps.courses.loader import KINDS, ContentError, LabData, read_course
from apps.sessions.engines import close_backends

#: Characters of a script's output shown for a broken step (its end: where errors are).
OUTPUT_TAIL = 1500


class Command(BaseCommand):
    help = (
        "Validate labs in a fresh sandbox each: every step's check must fail before its "
        "solve script runs and pass after it. Exits 1 if a lab is broken."
    )

    def add_arguments(self, parser):
        parser.add_argument("labs", nargs="*", metavar="lab-slug",
                            help="labs to validate (default: every ready lab)")  # fmt: skip
        parser.add_argument("--kind", choices=sorted(KINDS), help="only labs of this kind")
        parser.add_argument("--dir", type=Path, default=None,
                            help="content folder (default: settings.CONTENT_DIR)")  # fmt: skip

    @no_translations  # CI logs read the same on every site
    def handle(self, *args, **options):
        labs = self.select(
            read_labs(options["dir"] or Path(settings.CONTENT_DIR)),
            options["labs"],
            options["kind"],
        )
        reports = asyncio.run(validate_all(labs, self.show_lab, self.show_step))
        broken = [r.lab for r in reports if not r.ok]
        seconds = sum(r.seconds for r in reports)
        summary = (
            f"{len(reports)} lab(s) validated in {seconds:.1f} s: "
            f"{len(reports) - len(broken)} ok, {len(broken)} broken"
        )
        if broken:
            raise CommandError(f"{summary} ({', '.join(broken)})", returncode=1)
        self.stdout.write(self.style.SUCCESS(summary))

    def select(self, labs: list[LabData], slugs: list[str], kind: str | None) -> list[LabData]:
        if slugs:
            known = {lab.slug for lab in labs}
            if unknown := [slug for slug in slugs if slug not in known]:
                raise CommandError(
                    f"no lab named {', '.join(unknown)}; known: {', '.join(sorted(known))}"
                )
            labs = [lab for lab in labs if lab.slug in slugs]
        else:
            labs = [lab for lab in labs if lab.status == "ready"]
        labs = [lab for lab in labs if kind is None or lab.kind == kind]
        if not labs:
            raise CommandError("no lab to validate")
        return labs

    def show_lab(self, lab: LabData, report: LabReport | None) -> None:
        if report is None:
            self.stdout.write(f"lab {lab.slug} ({lab.kind}, {len(lab.steps)} steps): starting")
            return
        if report.error:
            self.stdout.write(self.style.ERROR(f"  {report.error}"))
            if report.error_detail:
                self.stdout.write(indent(report.error_detail, "    "))
        verdict = self.style.SUCCESS("ok") if report.ok else self.style.ERROR("BROKEN")
        self.stdout.write(f"lab {lab.slug}: {verdict} in {report.seconds:.1f} s "
                          f"(sandbox ready in {report.start_seconds:.1f} s)")  # fmt: skip

    def show_step(self, outcome: StepOutcome) -> None:
        name = f"  step {outcome.number} {outcome.slug}"
        if not outcome.has_check and not outcome.has_solve:
            self.stdout.write(f"{name}: no check ({outcome.seconds:.1f} s)")
            return
        if not outcome.problem:
            self.stdout.write(f"{name}: ok ({outcome.seconds:.1f} s)")
            return
        self.stdout.write(self.style.ERROR(f"{name}: BROKEN ({outcome.seconds:.1f} s)"))
        self.stdout.write(indent(outcome.problem, "    "))
        parts = [
            (outcome.has_check, f"check before the solve: {verdict(outcome.passed_before)}",
             outcome.output_before),
            (outcome.has_solve, f"solve: exit {outcome.solve_exit}", outcome.solve_output),
            (outcome.passed_after is not None,
             f"check after the solve: {verdict(outcome.passed_after)}", outcome.output_after),
        ]  # fmt: skip
        for ran, label, output in parts:
            if ran:
                self.stdout.write(f"    {label}")
                if output:
                    self.stdout.write(indent(output[-OUTPUT_TAIL:], "      | "))


async def validate_all(labs: list[LabData], show_lab, show_step) -> list[LabReport]:
    """One lab after the other: a machine with two cores and a VM under TCG has no room
    for more at once."""

    def progress(lab: LabData):
        def on_progress(kind: str, outcome: StepOutcome | None) -> None:
            if kind == "starting":
                show_lab(lab, None)
            elif kind == "step" and outcome is not None:
                show_step(outcome)

        return on_progress

    reports = []
    try:
        for lab in labs:
            report = await validate_lab(lab, on_progress=progress(lab))
            show_lab(lab, report)
            reports.append(report)
    finally:
        await close_backends()
    return reports


def read_labs(root: Path) -> list[LabData]:
    course_dirs = sorted(path.parent for path in root.glob("*/course.yaml"))
    if not course_dirs:
        raise CommandError(f"no course found: {root}/*/course.yaml")
    try:
        courses = [read_course(path) for path in course_dirs]
    except ContentError as exc:
        raise CommandError(str(exc)) from None
    return [lab for course in courses for module in course.modules for lab in module.labs]


def verdict(passed: bool | None) -> str:
    return {True: "passed", False: "failed", None: "not run"}[passed]


def indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())
