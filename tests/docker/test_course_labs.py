"""Every runnable container lab of the real course works: on a fresh sandbox each step's
check fails, and after the step's solve script it passes (steps in order)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import docker
import pytest

from apps.courses.loader import LabData, read_course
from provisioning.base import LABEL_SESSION, LABEL_SITE, Resources, SandboxSpec
from provisioning.docker import DockerBackend
from tests.conftest import TEST_SITE

pytestmark = pytest.mark.docker
CONTENT = Path(__file__).resolve().parents[2] / "content"


def container_labs() -> list[LabData]:
    labs = []
    for course_yaml in sorted(CONTENT.glob("*/course.yaml")):
        for module in read_course(course_yaml.parent).modules:
            labs += [
                lab for lab in module.labs if lab.kind == "container" and lab.status == "ready"
            ]
    return labs


def as_student(name: str, script: str):
    client = docker.from_env()
    try:
        return client.containers.get(name).exec_run(
            ["sh", "-c", script], workdir="/root", environment={"LANG": "C.UTF-8"}
        )
    finally:
        client.close()


@pytest.mark.parametrize("lab", container_labs(), ids=lambda lab: lab.slug)
async def test_lab_checks_fail_before_and_pass_after_each_solution(lab: LabData):
    backend = DockerBackend(site=TEST_SITE)
    box = await backend.start(
        SandboxSpec(
            name=f"{TEST_SITE}-lab-{lab.slug}"[:60],
            image=lab.environment,
            labels={LABEL_SITE: TEST_SITE, LABEL_SESSION: lab.slug},
            resources=Resources(cpus=lab.cpus, memory_mib=lab.memory_mib, pids=lab.pids),
            capabilities=tuple(lab.capabilities),
            network=lab.network,
            setup_script=lab.setup_script,
        ),
        timeout=300,
    )
    try:
        for step in lab.steps:
            if not step.check_script:
                continue
            before = await backend.run_check(box, step.check_script, timeout=15)
            assert not before.passed, f"step {step.number} passes before it was done"
            assert before.output, f"step {step.number} gives the student no hint"
            assert step.solve_script, f"step {step.number} has a check but no solve script"
            # The solution runs as the student would type it: the image's shell and tools
            # (checks run with the platform's own, see provisioning/docker/tools.py).
            solved = await asyncio.to_thread(as_student, box.name, step.solve_script)
            assert solved.exit_code == 0, f"solve of step {step.number} failed: {solved.output}"
            after = await backend.run_check(box, step.check_script, timeout=15)
            assert after.passed, f"step {step.number} fails after its solution: {after.output}"
    finally:
        await backend.stop(box)
        await backend.close()
