"""Booted snapshots (provisioning/libvirt/snapshots.py) against the real libvirtd and QEMU:
restored tiny guests answer checks, keep their writes to themselves and get the host's time."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from provisioning.libvirt import LibvirtBackend
from tests.vm.conftest import OVERLAYS, TEMPLATES, TEST_SITE, make_spec

pytestmark = [pytest.mark.libvirt, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def restoring(backend: LibvirtBackend) -> AsyncIterator[LibvirtBackend]:
    """A backend that restores starts from snapshots, with tiny's snapshot built."""
    restoring = LibvirtBackend(templates_dir=TEMPLATES, overlays_dir=OVERLAYS, site=TEST_SITE,
                               use_snapshots=True)  # fmt: skip
    await restoring.build_snapshot("tiny", make_spec("x").resources)
    yield restoring
    await restoring.close()


async def test_two_restored_guests_answer_checks_and_do_not_share_writes(
    restoring: LibvirtBackend,
):
    one, two = [await restoring.start(make_spec(f"snap-{i}"), timeout=120) for i in (1, 2)]
    try:
        for box in (one, two):
            assert restoring.start_modes[box.name] == "restored"
        for box, mine in ((one, "one"), (two, "two")):
            wrote = await restoring.run_check(box, f"echo {mine} > /data/{mine}", timeout=10)
            assert wrote.passed, wrote.output
        for box, mine, other in ((one, "one", "two"), (two, "two", "one")):
            seen = await restoring.run_check(box, f"cat /data/{mine}; ls /data", timeout=10)
            assert seen.output.startswith(f"{mine}\n") and other not in seen.output.split()
        clock = await restoring.run_check(one, "date +%s", timeout=10)
        assert abs(int(clock.output) - time.time()) < 5
    finally:
        await asyncio.gather(restoring.stop(one), restoring.stop(two))


async def test_a_stale_snapshot_boots_cold_and_is_rebuilt():
    """A template that changed after its snapshot was made: cold boot, then a new snapshot
    replaces the stale one."""
    # Not under pytest's tmp_path: QEMU's user cannot enter it.
    tmp_path = OVERLAYS.parent / "test-stale-snapshots"
    shutil.rmtree(tmp_path, ignore_errors=True)
    copy = tmp_path / "templates" / "tiny"
    # Contents only: copy2 would also copy the extended attributes in which libvirt keeps
    # the owner of a kernel a running guest uses, and libvirt then refuses to label the copy.
    shutil.copytree(TEMPLATES / "tiny", copy, copy_function=shutil.copyfile)
    own = LibvirtBackend(templates_dir=tmp_path / "templates", overlays_dir=OVERLAYS,
                         site=TEST_SITE, virt_type="qemu", use_snapshots=True)  # fmt: skip
    try:
        stale = await own.build_snapshot("tiny", make_spec("x").resources)
        os.utime(copy / "initrd.img")  # the template changed
        box = await own.start(make_spec("stale"), timeout=120)
        try:
            assert own.start_modes[box.name].startswith("cold")
            assert (await own.run_check(box, "echo fine", timeout=10)).output == "fine\n"
        finally:
            await own.stop(box)
        await own.wait_snapshot_builds()
        rebuilt = await asyncio.to_thread(own.snapshots)
        assert [s.key for s in rebuilt] != [stale.key] and len(rebuilt) == 1
        assert not stale.folder.exists()
    finally:
        await own.close()
        shutil.rmtree(tmp_path, ignore_errors=True)
