"""Every runnable VM lab of the real course works in a real guest: each step's check fails
before the step is done and passes after its solve script (steps in order)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.courses.loader import LabData, read_course
from provisioning.base import LABEL_SESSION, LABEL_SITE, Resources, SandboxSpec
from provisioning.images import vm_templates
from tests.vm.conftest import OVERLAYS, TEMPLATES, TEST_SITE

pytestmark = [pytest.mark.libvirt, pytest.mark.asyncio(loop_scope="session")]
CONTENT = Path(__file__).resolve().parents[2] / "content"
#: Checks in a TCG guest run slower than in a container; solves may pull images, build, compose.
CHECK_TIMEOUT, SOLVE_TIMEOUT = 30, 300


def vm_labs() -> list[LabData]:
    labs = []
    for course_yaml in sorted(CONTENT.glob("*/course.yaml")):
        for module in read_course(course_yaml.parent).modules:
            labs += [lab for lab in module.labs if lab.kind == "vm" and lab.status == "ready"]
    return labs


@pytest.mark.parametrize("lab", vm_labs(), ids=lambda lab: lab.slug)
async def test_vm_lab_checks_fail_before_and_pass_after_each_solution(lab: LabData, libvirtd):
    from provisioning.libvirt import LibvirtBackend

    vm_templates.build(lab.environment, TEMPLATES)
    backend = LibvirtBackend(templates_dir=TEMPLATES, overlays_dir=OVERLAYS, site=TEST_SITE)
    box = await backend.start(
        SandboxSpec(
            name=f"{TEST_SITE}-lab-{lab.slug}"[:60],
            image=lab.environment,
            labels={LABEL_SITE: TEST_SITE, LABEL_SESSION: f"lab-{lab.slug}"},
            resources=Resources(cpus=lab.cpus, memory_mib=lab.memory_mib),
            network=lab.network,
        ),
        timeout=900,
    )
    try:
        for step in lab.steps:
            if not step.check_script:
                continue
            before = await backend.run_check(box, step.check_script, timeout=CHECK_TIMEOUT)
            assert not before.passed, f"step {step.number} passes before it was done"
            assert before.output, f"step {step.number} gives the student no hint"
            solved = await backend.run_check(box, step.solve_script, timeout=SOLVE_TIMEOUT)
            assert solved.passed, f"solve of step {step.number} failed: {solved.output}"
            after = await backend.run_check(box, step.check_script, timeout=CHECK_TIMEOUT)
            assert after.passed, f"step {step.number} fails after its solution: {after.output}"
    finally:
        await backend.stop(box)
        await backend.close()
