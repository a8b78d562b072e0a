"""A Debian guest in which the student runs Docker for real (the debian-docker template).

Slow under TCG: about a minute to boot, then Docker loads the baked-in
``labsite/base`` image; each ``docker run`` takes seconds more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from provisioning.base import Sandbox
from provisioning.images import docker_base, vm_templates
from provisioning.libvirt import LibvirtBackend
from tests.vm.conftest import TEMPLATES, make_spec, read_until

pytestmark = [pytest.mark.libvirt, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(scope="session")
def docker_template(libvirtd: None) -> Path:
    """debian-docker with labsite/base inside (both built if missing)."""
    if not docker_base.image_exists("labsite/base:latest"):
        docker_base.build()
    return vm_templates.build("debian-docker", TEMPLATES)


@pytest_asyncio.fixture(loop_scope="session")
async def docker_guest(backend: LibvirtBackend, docker_template: Path) -> AsyncIterator[Sandbox]:
    spec = make_spec("docker", image="debian-docker", cpus=2, memory_mib=2048)
    sandbox = await backend.start(spec, timeout=900)
    yield sandbox
    await backend.stop(sandbox)


async def test_docker_runs_the_lab_image_inside_the_guest(
    backend: LibvirtBackend, docker_guest: Sandbox
):
    result = await backend.run_check(
        docker_guest, "docker run --rm labsite/base echo ok && docker-compose version --short",
        timeout=180,
    )  # fmt: skip
    assert result.passed, result.output
    assert result.output.splitlines()[0] == "ok"
    assert result.output.splitlines()[1].startswith("1.29")

    terminal = await backend.open_terminal(docker_guest, tab=1, cols=100, rows=30)
    try:
        await terminal.write(b"docker images --format '{{.Repository}}:{{.Tag}}' | sort\n")
        await read_until(terminal, b"labsite/base:latest", within=60)
    finally:
        await terminal.close()
