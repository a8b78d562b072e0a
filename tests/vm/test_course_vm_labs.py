"""Every runnable VM lab of the real course works in a real guest: the lab validator
(apps/authoring/validator.py) boots a fresh guest of the lab's template on the site's
libvirt backend, and each step's check fails before the step's solve script runs and
passes after it (steps in order)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_asyncio

from apps.authoring.validator import lab_spec, validate_lab
from apps.courses.loader import LabData
from apps.sessions.engines import get_backend
from provisioning.images import vm_templates
from tests.docker.test_course_labs import shipped_labs
from tests.vm.conftest import TEMPLATES

pytestmark = [pytest.mark.libvirt, pytest.mark.asyncio(loop_scope="session")]
#: Checks in a TCG guest on a CI machine (2 cores shared with the rest of the suite) run
#: far slower than on a KVM host, where the site's LABSITE_CHECK_TIMEOUT holds; solves may
#: pull images, build and run compose.
CHECK_TIMEOUT, SOLVE_TIMEOUT = 60, 300
#: A debian-docker guest boots in minutes under TCG.
START_TIMEOUT = 900


def test_the_course_ships_vm_labs():
    labs = shipped_labs("vm")
    assert len(labs) >= 2
    # The site boots VM labs from templates it builds itself: only names it knows.
    assert {lab.environment for lab in labs} <= set(vm_templates.BUILDERS)


def site_template(name: str, settings) -> None:
    """Build (or find) template ``name`` where the site's libvirt backend, which the
    validator uses, boots it from."""
    site_templates = settings.LABSITE_BACKENDS["libvirt"]["OPTIONS"]["templates_dir"]
    assert Path(site_templates).resolve() == TEMPLATES.resolve()
    assert vm_templates.build(name, TEMPLATES).is_dir()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def snapshots_built(libvirtd):
    """Every VM lab's booted snapshot, built before the labs run, as an administrator does
    before a class (docs/vm-snapshots.md): each lab then restores its guest in seconds, and
    no snapshot build competes for the CPU with a lab's checks."""
    backend = get_backend("libvirt")
    if not backend.use_snapshots:
        return
    shapes = {}
    for lab in shipped_labs("vm"):
        await asyncio.to_thread(vm_templates.build, lab.environment, TEMPLATES)
        spec = lab_spec(lab, site="labsite-test-snapshots")
        shapes[(spec.image, spec.resources, spec.network)] = spec
    for image, resources, network in shapes:
        await backend.build_snapshot(image, resources, network)


@pytest.mark.parametrize("lab", shipped_labs("vm"), ids=lambda lab: lab.slug)
async def test_vm_lab_checks_fail_before_and_pass_after_each_solution(
    lab: LabData, libvirtd, snapshots_built, settings
):
    await asyncio.to_thread(site_template, lab.environment, settings)
    settings.LABSITE_START_TIMEOUT = {**settings.LABSITE_START_TIMEOUT, "vm": START_TIMEOUT}
    report = await validate_lab(lab, check_timeout=CHECK_TIMEOUT, solve_timeout=SOLVE_TIMEOUT)
    assert report.ok, (
        f"lab {lab.slug} is broken:\n"
        + "\n".join(report.problems)
        + "".join(
            f"\n--- step {s.number}: check before:\n{s.output_before[-800:]}\n--- solve "
            f"(exit {s.solve_exit}):\n{s.solve_output[-1500:]}\n"
            f"--- check after:\n{s.output_after[-800:]}"
            for s in report.steps
            if s.problem
        )
    )
    checked = [s.number for s in report.steps if s.passed_before is False and s.passed_after]
    assert checked == [s.number for s in lab.steps if s.check_script.strip()]
