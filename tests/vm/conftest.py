"""Fixtures for tests against the real libvirtd and QEMU, without Django.

Everything the tests start carries the site label ``TEST_SITE`` and is removed
before and after the session; a failing test gets the tail of each test guest's
serial console printed. All tests share one event loop: libvirt's event
implementation is one per process.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from provisioning.base import (
    LABEL_LAB,
    LABEL_OWNER,
    LABEL_SESSION,
    LABEL_SITE,
    Resources,
    Sandbox,
    SandboxSpec,
)
from provisioning.images import vm_templates
from provisioning.libvirt import LibvirtBackend

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "var" / "vm" / "templates"
OVERLAYS = REPO / "var" / "vm" / "test-overlays"
#: Guests made by these tests carry this site label; cleanup removes exactly those.
TEST_SITE = "labsite-test-vm"


def make_spec(
    name: str, *, image: str = "tiny", network: str = "none", memory_mib: int = 256, cpus: float = 1
) -> SandboxSpec:
    """A spec for a test guest: labelled with TEST_SITE, named after it."""
    return SandboxSpec(
        name=f"{TEST_SITE}-{name}",
        image=image,
        labels={
            LABEL_SITE: TEST_SITE,
            LABEL_SESSION: name,
            LABEL_OWNER: "alice",
            LABEL_LAB: "vm-test",
        },
        resources=Resources(cpus=cpus, memory_mib=memory_mib),
        network=network,
    )


def new_backend() -> LibvirtBackend:
    return LibvirtBackend(templates_dir=TEMPLATES, overlays_dir=OVERLAYS, site=TEST_SITE)


async def remove_test_guests(backend: LibvirtBackend) -> None:
    for sandbox in await backend.list_sandboxes():
        await backend.stop(sandbox)


@pytest.fixture(scope="session")
def libvirtd() -> None:
    """libvirtd answering on qemu:///system (started by the project's script if needed)."""
    subprocess.run([str(REPO / "scripts" / "start-libvirtd.sh")], check=True)


@pytest.fixture(scope="session")
def tiny_template(libvirtd: None) -> Path:
    """The tiny template, built if missing or out of date (a failed build fails the tests)."""
    return vm_templates.build("tiny", TEMPLATES)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def backend(tiny_template: Path) -> AsyncIterator[LibvirtBackend]:
    backend = new_backend()
    await remove_test_guests(backend)
    yield backend
    await remove_test_guests(backend)
    await backend.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def guest(backend: LibvirtBackend) -> Sandbox:
    """One tiny guest shared by the tests that only look at it or use its shell."""
    return await backend.start(make_spec("shared"), timeout=180)


async def read_until(terminal: object, needle: bytes, within: float = 20.0) -> bytes:
    """Read a terminal until ``needle`` shows up; fail with what was read if it does not."""
    seen = b""
    deadline = asyncio.get_running_loop().time() + within
    while needle not in seen:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"{needle!r} not seen within {within} s; got {seen[-500:]!r}")
        try:
            chunk = await asyncio.wait_for(terminal.read(), remaining)  # type: ignore[attr-defined]
        except TimeoutError:
            continue
        if not chunk:
            raise AssertionError(f"terminal closed before {needle!r}; got {seen[-500:]!r}")
        seen += chunk
    return seen


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        for log in sorted(OVERLAYS.glob(f"{TEST_SITE}-*.console.log")):
            tail = log.read_bytes()[-1500:].decode("utf-8", errors="replace")
            report.sections.append((f"console of {log.name}", tail))
