"""The lab validator against the real Docker Engine: a lab whose check passes before its
solve, or whose solve does not make the check pass, is reported broken naming the step; a
good lab is ok; solves run as the student would type them; the sandbox is always removed;
``manage.py validate_labs`` says the same and exits 1 on a broken lab. The lab of
docs/authoring-labs.md is the one under tests/fixtures/authoring-example and is valid."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation

from apps.authoring.validator import LabReport, validate_lab
from apps.courses.loader import LabData, read_course
from provisioning.base import LABEL_SITE
from tests.conftest import TEST_SITE

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]
BROKEN_LABS = REPO / "tests" / "fixtures" / "broken-labs"
EXAMPLE = REPO / "tests" / "fixtures" / "authoring-example"
DOC = REPO / "docs" / "authoring-labs.md"
#: The validator labels its sandboxes apart from the site's (see the validator's docstring).
VALIDATE_SITE = f"{TEST_SITE}-validate"


@pytest.fixture(autouse=True)
def english(settings):
    """The validator's sentences as written (the site speaks Chinese by default)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def fixture_lab(slug: str, root: Path = BROKEN_LABS) -> LabData:
    for course_yaml in root.glob("*/course.yaml"):
        for module in read_course(course_yaml.parent).modules:
            for lab in module.labs:
                if lab.slug == slug:
                    return lab
    raise LookupError(slug)


def with_step(lab: LabData, number: int, **changes: str) -> LabData:
    """``lab`` with step ``number``'s scripts replaced."""
    steps = [dataclasses.replace(s, **changes) if s.number == number else s for s in lab.steps]
    return dataclasses.replace(lab, steps=steps)


def leftovers(docker_client) -> list[str]:
    label = f"{LABEL_SITE}={VALIDATE_SITE}"
    return [c.name for c in docker_client.containers.list(all=True, filters={"label": label})]


def broken_steps(report: LabReport) -> list[int]:
    return [step.number for step in report.steps if step.problem]


async def test_a_good_lab_is_ok_and_reports_its_progress(docker_client):
    seen: list[tuple[str, int | None]] = []

    async def on_progress(kind, outcome):
        # The sandbox exists from "starting" until just before "done".
        seen.append((kind, outcome and outcome.number))

    report = await validate_lab(fixture_lab("good"), on_progress=on_progress)
    assert report.ok, report.problems
    assert seen == [("starting", None), ("step", 1), ("step", 2), ("done", None)]
    for step in report.steps:
        assert (step.passed_before, step.solve_exit, step.passed_after) == (False, 0, True)
        assert "还没有" in step.output_before or "还不是" in step.output_before
        assert step.output_after == "很好"
    as_json = json.loads(json.dumps(report.as_dict()))
    assert as_json["ok"] is True and as_json["lab"] == "good"
    assert [s["number"] for s in as_json["steps"]] == [1, 2]
    assert leftovers(docker_client) == []


async def test_a_check_that_passes_before_its_solve_is_reported(docker_client):
    report = await validate_lab(fixture_lab("passes-early"))
    assert not report.ok
    assert broken_steps(report) == [2]
    step = report.steps[1]
    assert step.passed_before is True
    assert "passes before the solve script ran" in step.problem
    assert report.problems == [f"step 2 (host): {step.problem}"]
    assert leftovers(docker_client) == []


async def test_a_solve_that_does_not_make_the_check_pass_is_reported(docker_client):
    report = await validate_lab(fixture_lab("solve-misses"))
    assert broken_steps(report) == [2]
    step = report.steps[1]
    assert (step.passed_before, step.solve_exit, step.passed_after) == (False, 0, False)
    assert step.problem == "The check still fails after the solve script ran."
    assert "/root/answers/hostname" in step.output_after  # the check's hint, for the author
    assert leftovers(docker_client) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"solve_script": ""}, "has a check but no solve script"),
        ({"solve_script": "echo half-done; exit 3"}, "exited with code 3"),
        ({"solve_script": "sleep 30"}, "did not finish within 2 seconds"),
        ({"check_script": "exit 1"}, "without printing anything"),
    ],
    ids=["no-solve", "solve-fails", "solve-hangs", "silent-check"],
)
async def test_other_broken_steps_are_named(docker_client, changes, problem):
    lab = with_step(fixture_lab("good"), 2, **changes)
    report = await validate_lab(lab, solve_timeout=2)
    assert broken_steps(report) == [2]
    assert problem in report.steps[1].problem
    assert report.steps[1].seconds < 15  # a hanging solve is killed at its deadline
    assert leftovers(docker_client) == []


async def test_solves_run_as_the_student_would_and_checks_with_the_platforms_tools(
    docker_client,
):
    probe = 'readlink /proc/$$/exe; pwd; echo "LANG=$LANG"; echo "PATH=$PATH"; id -un'
    lab = with_step(fixture_lab("good"), 2, check_script=f"{probe}; exit 1", solve_script=probe)
    report = await validate_lab(lab)
    student = report.steps[1].solve_output.splitlines()
    # The image's own shell (Debian's dash), in /root, in UTF-8, without the platform's tools.
    assert student[0].endswith("/dash") and student[1:3] == ["/root", "LANG=C.UTF-8"]
    assert "/.labsite" not in student[3] and student[4] == "root"
    check = report.steps[1].output_before.splitlines()
    assert check[0].startswith("/.labsite/") and check[3].startswith("PATH=/.labsite/bin:")


async def test_a_sandbox_that_cannot_start_is_reported_and_nothing_is_left(docker_client):
    lab = dataclasses.replace(fixture_lab("good"), environment="labsite/not-built-anywhere")
    report = await validate_lab(lab)
    assert not report.ok and report.steps == []
    assert "could not start" in report.error and "not available" in report.error
    assert "not-built-anywhere" in report.error_detail
    assert leftovers(docker_client) == []


# -- the management command --------------------------------------------------------------------


def validate_labs(*args: str, content: Path = BROKEN_LABS) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LABSITE_CONTENT_DIR": str(content), "LABSITE_SITE_NAME": TEST_SITE}
    return subprocess.run(
        [sys.executable, "manage.py", "validate_labs", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_command_names_the_broken_steps_and_exits_1(docker_client):
    run = validate_labs()
    assert run.returncode == 1, run.stderr
    out = run.stdout
    assert "lab good: ok" in out
    assert "lab passes-early: BROKEN" in out and "lab solve-misses: BROKEN" in out
    assert out.count("step 2 host: BROKEN") == 2 and "step 1 greet: ok" in out
    assert "The check passes before the solve script ran" in out
    # A broken step shows what the check said, for the author.
    assert "| 还没有找到 /root/answers/hostname" in out
    assert re.search(r"3 lab\(s\) validated in [\d.]+ s: 1 ok, 2 broken "
                     r"\(passes-early, solve-misses\)", run.stderr)  # fmt: skip
    assert leftovers(docker_client) == []


def test_the_command_exits_0_when_the_labs_it_was_given_are_ok(docker_client):
    run = validate_labs("good")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "lab good: ok" in run.stdout and "passes-early" not in run.stdout
    assert re.search(r"1 lab\(s\) validated in [\d.]+ s: 1 ok, 0 broken", run.stdout)


def test_the_command_refuses_a_lab_it_does_not_know(docker_client):
    run = validate_labs("no-such-lab")
    assert run.returncode == 1
    assert "no lab named no-such-lab; known: good, passes-early, solve-misses" in run.stderr
    assert validate_labs("--kind", "vm").returncode == 1  # these are all container labs


# -- the documented example ---------------------------------------------------------------------


def documented_files() -> dict[str, str]:
    """The files docs/authoring-labs.md shows: a ``#### `path``` heading, then a fence."""
    pattern = re.compile(r"^#### `([^`]+)`\n+(`{3,})[a-z]*\n(.*?)^\2$", re.MULTILINE | re.DOTALL)
    return {name: text for name, _fence, text in pattern.findall(DOC.read_text(encoding="utf-8"))}


def test_the_documented_example_is_the_fixture_lab_file_for_file():
    shown = documented_files()
    on_disk = {
        str(path.relative_to(EXAMPLE)): path.read_text(encoding="utf-8")
        for path in sorted(EXAMPLE.rglob("*"))
        if path.is_file()
    }
    assert sorted(shown) == sorted(on_disk)
    for name, text in on_disk.items():
        assert shown[name] == text, f"docs/authoring-labs.md shows {name} differently"


async def test_the_documented_example_lab_is_valid(docker_client):
    report = await validate_lab(fixture_lab("hello-files", EXAMPLE))
    assert report.ok, report.problems
    assert [s.passed_after for s in report.steps] == [True, True, None]  # step 3: no check
