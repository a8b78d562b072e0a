"""Every runnable container lab of the real course works: the lab validator
(apps/authoring/validator.py) starts a fresh sandbox of it, and each step's check fails
before the step's solve script runs and passes after it (steps in order)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.authoring.validator import validate_lab
from apps.courses.loader import LabData, read_course

pytestmark = pytest.mark.docker
CONTENT = Path(__file__).resolve().parents[2] / "content"


def shipped_labs(kind: str) -> list[LabData]:
    """The ready labs of ``kind`` in every course under content/."""
    return [
        lab
        for course_yaml in sorted(CONTENT.glob("*/course.yaml"))
        for module in read_course(course_yaml.parent).modules
        for lab in module.labs
        if lab.kind == kind and lab.status == "ready"
    ]


def test_the_course_ships_container_labs():
    # Without this, an empty list would make the test below pass by running nothing.
    assert len(shipped_labs("container")) >= 5


@pytest.mark.parametrize("lab", shipped_labs("container"), ids=lambda lab: lab.slug)
async def test_lab_checks_fail_before_and_pass_after_each_solution(lab: LabData, docker_client):
    report = await validate_lab(lab)
    assert report.ok, f"lab {lab.slug} is broken:\n" + "\n".join(report.problems)
    # Every step with a check was checked both ways (none skipped as "nothing to run").
    checked = [s.number for s in report.steps if s.passed_before is False and s.passed_after]
    assert checked == [s.number for s in lab.steps if s.check_script.strip()]
