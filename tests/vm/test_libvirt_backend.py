"""LibvirtBackend against the real libvirtd and QEMU, with the tiny template.

One shared guest serves the tests that only use its shell; the tests about
stopping, exiting and isolation make guests of their own.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import libvirt
import pytest

from provisioning.base import HostUnavailable, Progress, Sandbox, SandboxError, SandboxStatus
from provisioning.libvirt import LibvirtBackend
from provisioning.libvirt.detect import CACHE_FILE
from provisioning.libvirt.domain_xml import network_name
from tests.vm.conftest import OVERLAYS, TEMPLATES, TEST_SITE, make_spec, new_backend, read_until

pytestmark = [pytest.mark.libvirt, pytest.mark.asyncio(loop_scope="session")]


def domain_xml_of(name: str) -> str:
    conn = libvirt.open("qemu:///system")
    try:
        return conn.lookupByName(name).XMLDesc(0)
    finally:
        conn.close()


async def test_virt_type_was_chosen_by_booting_a_kvm_guest(backend: LibvirtBackend, guest: Sandbox):
    assert backend.virt_type in ("kvm", "qemu")
    evidence = backend.virt_evidence
    assert evidence["tried"] == "kvm"
    # KVM is chosen exactly when the probe guest reached its shell prompt.
    assert evidence["booted"] is (backend.virt_type == "kvm")
    assert "seconds" in evidence or "error" in evidence
    cache = json.loads((TEMPLATES / CACHE_FILE).read_text())
    entry = cache[json.dumps(evidence["key"], sort_keys=True)]
    assert entry["virt_type"] == backend.virt_type
    assert f"<domain type='{backend.virt_type}'" in domain_xml_of(guest.name)


async def test_terminal_runs_the_shell_on_the_console(backend: LibvirtBackend, guest: Sandbox):
    terminal = await backend.open_terminal(guest, tab=1, cols=80, rows=24)
    a, b = random.randint(1000, 9999), random.randint(1000, 9999)
    try:
        # The shell computes the sum: seeing it proves a shell ran the line, not an echo.
        await terminal.write(f"echo hello-$(({a}+{b}))\n".encode())
        await read_until(terminal, f"hello-{a + b}".encode())
    finally:
        await terminal.close()


async def test_reconnect_replays_output_and_reaches_the_same_shell(
    backend: LibvirtBackend, guest: Sandbox
):
    marker = f"mark-{random.randint(10**5, 10**6)}"
    first = await backend.open_terminal(guest, tab=1, cols=80, rows=24)
    await first.write(f"cd /tmp && echo {marker}\n".encode())
    await read_until(first, f"{marker}\r\n".encode())
    await first.close()

    again = await backend.open_terminal(guest, tab=1, cols=80, rows=24)
    try:
        assert marker.encode() in again.replay
        await again.write(b"pwd\n")
        await read_until(again, b"/tmp\r\n")
    finally:
        await again.write(b"cd\n")
        await again.close()


async def test_another_backend_adopts_the_guest_after_a_restart(guest: Sandbox):
    """A new backend object (a restarted server) finds the guest by its labels alone."""
    restarted = new_backend()
    try:
        found = {s.name: s for s in await restarted.list_sandboxes()}
        assert found[guest.name].engine_id == guest.engine_id
        assert found[guest.name].labels == guest.labels
        assert await restarted.status(guest) == SandboxStatus.RUNNING
        # Starting the same spec again returns the running guest instead of a new one.
        again = await restarted.start(make_spec("shared"))
        assert again.engine_id == guest.engine_id
        # Its terminal replays the console from the log and reaches the same shell.
        terminal = await restarted.open_terminal(guest, tab=1, cols=80, rows=24)
        assert b"root@lab" in terminal.replay
        await terminal.write(b"echo adopted-$((40+2))\n")
        await read_until(terminal, b"adopted-42")
        await terminal.close()
    finally:
        await restarted.close()


async def test_resize_sets_the_console_size_without_typing(backend: LibvirtBackend, guest: Sandbox):
    terminal = await backend.open_terminal(guest, tab=1, cols=80, rows=24)
    try:
        await terminal.resize(cols=123, rows=45)
        await terminal.write(b"stty size\n")
        await read_until(terminal, b"45 123\r\n")
    finally:
        await terminal.close()


async def test_a_second_tab_is_refused(backend: LibvirtBackend, guest: Sandbox):
    with pytest.raises(SandboxError, match="one terminal"):
        await backend.open_terminal(guest, tab=2, cols=80, rows=24)


async def test_checks_pass_fail_and_time_out_outside_the_console(
    backend: LibvirtBackend, guest: Sandbox
):
    terminal = await backend.open_terminal(guest, tab=1, cols=80, rows=24)
    passing = await backend.run_check(guest, "test -d /data && echo check-fine", timeout=10)
    assert passing.passed and passing.exit_code == 0
    assert passing.output == "check-fine\n"

    failing = await backend.run_check(guest, "echo not yet; echo oops >&2; exit 3", timeout=10)
    assert not failing.passed and failing.exit_code == 3 and not failing.timed_out
    assert failing.output == "not yet\noops\n"
    missing = await backend.run_check(guest, "true\nno-such-tool --help", timeout=10)
    assert missing.exit_code == 127 and "no-such-tool: not found" in missing.output

    started = time.monotonic()
    slow = await backend.run_check(guest, "echo begun; sleep 300 & sleep 301", timeout=2)
    assert slow.timed_out and not slow.passed and slow.exit_code is None
    assert slow.output == "begun\n"
    assert time.monotonic() - started < 10
    # The whole process group died, the background sleep too.
    leftover = await backend.run_check(guest, "ps | grep -c '[s]leep 30'", timeout=10)
    assert leftover.output.strip() == "0"

    # None of it was typed into, or printed on, the student's console.
    await terminal.write(b"echo console-quiet\n")
    seen = await read_until(terminal, b"console-quiet\r\n")
    await terminal.close()
    for text in (b"check-fine", b"oops", b"begun"):
        assert text not in seen


async def test_status_and_stats_of_a_running_guest(backend: LibvirtBackend, guest: Sandbox):
    assert await backend.status(guest) == SandboxStatus.RUNNING
    stats = await backend.stats(guest)
    assert stats.memory_limit_bytes == 256 * 1024 * 1024
    assert stats.memory_bytes > 0
    assert stats.cpu_percent >= 0


async def test_guest_without_network_has_only_loopback(backend: LibvirtBackend, guest: Sandbox):
    result = await backend.run_check(guest, "ls /sys/class/net", timeout=10)
    assert result.output.split() == ["lo"]


async def test_a_start_reports_progress_and_is_starting_until_usable(backend: LibvirtBackend):
    spec = make_spec("progress")
    progress: list[Progress] = []
    start = asyncio.create_task(backend.start(spec, on_progress=progress.append))
    seen = set()
    while not start.done():
        seen.add(await backend.status(Sandbox(spec.name, "", {})))
        await asyncio.sleep(0.1)
    sandbox = await start
    try:
        assert SandboxStatus.STARTING in seen and SandboxStatus.RUNNING not in seen
        assert await backend.status(sandbox) == SandboxStatus.RUNNING
        percents = [p.percent for p in progress]
        assert percents == sorted(percents) and progress[-1] == Progress(100, "ready")
        assert any("booting" in p.message or "agent" in p.message for p in progress)
    finally:
        await backend.stop(sandbox)


async def test_two_isolated_guests_cannot_reach_each_other(backend: LibvirtBackend):
    one, two = await asyncio.gather(
        backend.start(make_spec("iso-1", network="isolated")),
        backend.start(make_spec("iso-2", network="isolated")),
    )
    try:
        for sandbox, address in ((one, "192.0.2.1"), (two, "192.0.2.2")):
            up = f"ip link set eth0 up && ip addr add {address}/24 dev eth0"
            assert (await backend.run_check(sandbox, up, timeout=10)).passed
        own = await backend.run_check(one, "ping -c 1 -W 2 192.0.2.1", timeout=10)
        assert own.passed, own.output  # ping itself works ...
        other = await backend.run_check(one, "ping -c 2 -W 2 192.0.2.2", timeout=15)
        assert not other.passed, other.output  # ... but nothing answers from the other guest
        assert "0 packets received" in other.output
    finally:
        await asyncio.gather(backend.stop(one), backend.stop(two))


async def test_exit_then_stop_removes_domain_overlay_log_and_network(backend: LibvirtBackend):
    spec = make_spec("stop", network="isolated")
    sandbox = await backend.start(spec)
    overlay = OVERLAYS / f"{spec.name}.qcow2"
    console_log = OVERLAYS / f"{spec.name}.console.log"
    assert overlay.exists() and console_log.exists()
    assert await backend.status(sandbox) == SandboxStatus.RUNNING

    # The student powers the guest off: the domain stays, and is EXITED.
    terminal = await backend.open_terminal(sandbox, tab=1, cols=80, rows=24)
    await terminal.write(b"poweroff -f\n")
    for _ in range(100):
        if await backend.status(sandbox) == SandboxStatus.EXITED:
            break
        await asyncio.sleep(0.2)
    assert await backend.status(sandbox) == SandboxStatus.EXITED
    await terminal.close()

    await backend.stop(sandbox)
    assert await backend.status(sandbox) == SandboxStatus.MISSING
    assert not overlay.exists() and not console_log.exists()
    assert sandbox.name not in {s.name for s in await backend.list_sandboxes()}
    conn = libvirt.open("qemu:///system")
    try:
        assert network_name(spec.name) not in conn.listNetworks() + conn.listDefinedNetworks()
    finally:
        conn.close()
    await backend.stop(sandbox)  # already gone: not an error


async def test_unknown_template_is_refused_with_a_readable_error(backend: LibvirtBackend):
    with pytest.raises(SandboxError, match="not installed"):
        await backend.start(make_spec("nothing", image="no-such-template"))
    assert await backend.status(Sandbox(f"{TEST_SITE}-nothing", "", {})) == SandboxStatus.MISSING


async def test_an_engine_that_does_not_answer_is_host_unavailable(guest: Sandbox):
    gone = LibvirtBackend(uri="qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    try:
        with pytest.raises(HostUnavailable):
            await gone.status(guest)
    finally:
        await gone.close()
