"""LibvirtBackend against the real libvirtd and QEMU, with the tiny template.

One shared guest serves the tests that only use its shell; the tests about
stopping, exiting, crashing, timing out and isolation make guests of their own.
Two backend objects in one process stand for two web processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import signal
import time
from pathlib import Path

import libvirt
import pytest
import pytest_asyncio

from provisioning.base import HostUnavailable, Progress, Sandbox, SandboxError, SandboxStatus
from provisioning.libvirt import LibvirtBackend
from provisioning.libvirt.console import TAKEN, ConsoleTerminal
from provisioning.libvirt.detect import CACHE_FILE
from provisioning.libvirt.domain_xml import network_name
from tests.vm.conftest import OVERLAYS, TEMPLATES, TEST_SITE, make_spec, new_backend, read_until

pytestmark = [pytest.mark.libvirt, pytest.mark.asyncio(loop_scope="session")]

#: Budget for a start of the tiny template (it boots in seconds under TCG).
START = 120.0


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def guest(backend: LibvirtBackend) -> Sandbox:
    """One tiny guest shared by the tests that only look at it or use its shell."""
    return await backend.start(make_spec("shared"), timeout=START)


def domain_xml_of(name: str) -> str:
    conn = libvirt.open("qemu:///system")
    try:
        return conn.lookupByName(name).XMLDesc(0)
    finally:
        conn.close()


def domain_exists(name: str) -> bool:
    conn = libvirt.open("qemu:///system")
    try:
        return name in [dom.name() for dom in conn.listAllDomains(0)]
    finally:
        conn.close()


def assert_for_students(error: SandboxError) -> None:
    """A short sentence, with nothing libvirt or QEMU said in it."""
    message = error.message
    assert message == str(error) and message.endswith(".") and len(message) < 120, message
    for engine_text in ("libvirt", "qemu", "virDomain", "error:", "internal", "/"):
        assert engine_text not in message.lower(), message


async def wait_for_end(terminal: ConsoleTerminal, within: float = 15.0) -> None:
    """Read until the terminal ends (``b""``); fail if it does not within ``within`` s."""
    async with asyncio.timeout(within):
        while await terminal.read():
            pass


async def listed(backend: LibvirtBackend, name: str) -> Sandbox | None:
    return {s.name: s for s in await backend.list_sandboxes()}.get(name)


async def listed_once_exited(backend: LibvirtBackend, name: str, within: float) -> Sandbox:
    """The listing's entry for ``name`` once it says EXITED; fail after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        box = await listed(backend, name)
        assert box is not None, f"{name} vanished instead of being listed as exited"
        if box.status == SandboxStatus.EXITED or time.monotonic() > deadline:
            return box
        await asyncio.sleep(0.2)


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
        assert found[guest.name].status == SandboxStatus.RUNNING
        assert found[guest.name].exit_detail == ""
        assert await restarted.status(guest) == SandboxStatus.RUNNING
        # Starting the same spec again returns the running guest instead of a new one.
        again = await restarted.start(make_spec("shared"), timeout=START)
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
    assert stats.disk_bytes is not None and stats.disk_bytes > 0

    # What the guest writes to its disk lands in its overlay, and disk_bytes says so.
    write = "dd if=/dev/urandom of=/data/blob bs=1M count=4 2>/dev/null && sync"
    assert (await backend.run_check(guest, write, timeout=30)).passed
    try:
        after = await backend.stats(guest)
        assert after.disk_bytes is not None
        assert after.disk_bytes - stats.disk_bytes >= 4 * 1024 * 1024
    finally:
        await backend.run_check(guest, "rm -f /data/blob", timeout=10)


async def test_guest_without_network_has_only_loopback(backend: LibvirtBackend, guest: Sandbox):
    result = await backend.run_check(guest, "ls /sys/class/net", timeout=10)
    assert result.output.split() == ["lo"]


async def test_a_start_reports_progress_and_is_starting_until_usable(backend: LibvirtBackend):
    spec = make_spec("progress")
    progress: list[Progress] = []
    start = asyncio.create_task(backend.start(spec, on_progress=progress.append, timeout=START))
    seen = []
    while not start.done():
        seen.append(await backend.status(Sandbox(spec.name, "", {})))
        await asyncio.sleep(0.1)
    sandbox = await start
    try:
        # STARTING while it boots; RUNNING only once usable (a last look may land between
        # the guest being marked usable and start() returning), never STARTING after that.
        assert SandboxStatus.STARTING in seen
        if SandboxStatus.RUNNING in seen:
            assert SandboxStatus.STARTING not in seen[seen.index(SandboxStatus.RUNNING) :]
        assert await backend.status(sandbox) == SandboxStatus.RUNNING
        percents = [p.percent for p in progress]
        assert percents == sorted(percents) and progress[-1] == Progress(100, "ready")
        assert any("booting" in p.message or "agent" in p.message for p in progress)
    finally:
        await backend.stop(sandbox)


async def test_two_isolated_guests_cannot_reach_each_other(backend: LibvirtBackend):
    one, two = await asyncio.gather(
        backend.start(make_spec("iso-1", network="isolated"), timeout=START),
        backend.start(make_spec("iso-2", network="isolated"), timeout=START),
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


async def test_a_console_taken_by_another_process_ends_with_taken_and_is_not_taken_back(
    backend: LibvirtBackend, guest: Sandbox
):
    """Two web processes, one console: the last opener has it, the other is told why."""
    first = await backend.open_terminal(guest, tab=1, cols=80, rows=24)
    other_process = new_backend()
    try:
        second = await other_process.open_terminal(guest, tab=1, cols=80, rows=24)
        assert isinstance(first, ConsoleTerminal) and isinstance(second, ConsoleTerminal)
        await wait_for_end(first)
        assert first.ended_reason == TAKEN
        with pytest.raises(ConnectionError):
            await first.write(b"echo stolen\n")

        # Nobody takes it back by itself: seconds later the second viewer still has it.
        await asyncio.sleep(3)
        await second.write(b"echo still-$((6*7))\n")
        await read_until(second, b"still-42")
        assert second.ended_reason == ""

        # Opening again (the student clicked "take it back") takes it once, the other way.
        again = await backend.open_terminal(guest, tab=1, cols=80, rows=24)
        await wait_for_end(second)
        assert second.ended_reason == TAKEN
        await again.write(b"echo back-$((40+2))\n")
        await read_until(again, b"back-42")
        assert again.ended_reason == ""
        await again.close()
    finally:
        await other_process.close()


async def test_a_terminal_opened_while_the_guest_boots_does_not_fail_the_start(
    backend: LibvirtBackend,
):
    """The runner's hub watches the boot; a student's page elsewhere takes the console."""
    spec = make_spec("boot-viewer")
    start = asyncio.create_task(backend.start(spec, timeout=START))
    other_process = new_backend()
    try:
        while await other_process.status(Sandbox(spec.name, "", {})) != SandboxStatus.STARTING:
            assert not start.done(), start
            await asyncio.sleep(0.1)
        # As early as can be: QEMU may still be starting, with no console device yet.
        viewer = await other_process.open_terminal(Sandbox(spec.name, "", {}), tab=1, cols=80,
                                                   rows=24)  # fmt: skip
        sandbox = await start  # ready through the agent, without the prompt
        assert await backend.status(sandbox) == SandboxStatus.RUNNING
        await viewer.write(b"echo booted-$((40+2))\n")
        await read_until(viewer, b"booted-42")
        await viewer.close()
    finally:
        await other_process.close()
        await backend.stop(Sandbox(spec.name, "", {}))
        await asyncio.gather(start, return_exceptions=True)


async def test_a_frozen_agent_cannot_stretch_a_checks_deadline(backend: LibvirtBackend):
    """The deadline is the host's: a guest whose agent never answers still gets a result."""
    spec = make_spec("frozen-agent")
    sandbox = await backend.start(spec, timeout=START)
    try:
        terminal = await backend.open_terminal(sandbox, tab=1, cols=80, rows=24)
        await terminal.write(b"kill -STOP $(cat /run/qemu-ga.pid) && echo agent-$((6*7))-stopped\n")
        await read_until(terminal, b"agent-42-stopped")
        started = time.monotonic()
        result = await backend.run_check(sandbox, "echo never", timeout=2)
        assert time.monotonic() - started < 2 + 5 + 2  # the timeout, the kill's grace, slack
        assert result.timed_out and not result.passed and result.exit_code is None
        await terminal.close()
    finally:
        await backend.stop(sandbox)


async def test_poweroff_in_the_guest_is_listed_as_exited_until_stop(backend: LibvirtBackend):
    spec = make_spec("stop", network="isolated")
    sandbox = await backend.start(spec, timeout=START)
    overlay = OVERLAYS / f"{spec.name}.qcow2"
    console_log = OVERLAYS / f"{spec.name}.console.log"
    assert overlay.exists() and console_log.exists()
    assert await backend.status(sandbox) == SandboxStatus.RUNNING

    # The student powers the guest off: the domain stays, and is listed EXITED with why.
    terminal = await backend.open_terminal(sandbox, tab=1, cols=80, rows=24)
    await terminal.write(b"poweroff -f\n")
    started = time.monotonic()
    box = await listed_once_exited(backend, spec.name, within=20)
    assert box.status == SandboxStatus.EXITED, box
    assert box.exit_detail == "the VM was powered off"
    assert time.monotonic() - started < 20
    assert await backend.status(sandbox) == SandboxStatus.EXITED  # status() agrees
    await wait_for_end(terminal)
    assert terminal.ended_reason == ""  # an ordinary end: not "taken"
    await terminal.close()

    await backend.stop(sandbox)
    assert await backend.status(sandbox) == SandboxStatus.MISSING
    assert not overlay.exists() and not console_log.exists()
    assert await listed(backend, spec.name) is None
    conn = libvirt.open("qemu:///system")
    try:
        assert network_name(spec.name) not in conn.listNetworks() + conn.listDefinedNetworks()
    finally:
        conn.close()
    await backend.stop(sandbox)  # already gone: not an error


async def test_a_crashed_guest_is_listed_as_exited_with_why(backend: LibvirtBackend):
    spec = make_spec("crash")
    sandbox = await backend.start(spec, timeout=START)
    try:
        pid_file = Path(f"/run/libvirt/qemu/{spec.name}.pid")
        qemu = int(await asyncio.to_thread(pid_file.read_text))
        os.kill(qemu, signal.SIGKILL)  # the QEMU process of the guest this test started
        box = await listed_once_exited(backend, spec.name, within=10)
        assert box.status == SandboxStatus.EXITED, box
        assert box.exit_detail == "the VM crashed"
    finally:
        await backend.stop(sandbox)


@pytest.mark.parametrize("timeout", [0.05, 2.5])
async def test_a_start_past_its_timeout_fails_and_leaves_nothing(
    backend: LibvirtBackend, timeout: float
):
    """0.05 s ends it while it prepares; 2.5 s while the guest boots (it needs ~4 s)."""
    spec = make_spec(f"tight-{int(timeout * 100)}")
    started = time.monotonic()
    with pytest.raises(SandboxError, match="did not start within") as failed:
        await backend.start(spec, timeout=timeout)
    assert time.monotonic() - started < timeout + 15
    assert_for_students(failed.value)
    assert "timed out" in failed.value.detail
    assert not domain_exists(spec.name)
    assert not (OVERLAYS / f"{spec.name}.qcow2").exists()
    assert not (OVERLAYS / f"{spec.name}.console.log").exists()
    assert await backend.status(Sandbox(spec.name, "", {})) == SandboxStatus.MISSING


async def test_a_dockerfile_is_refused_before_anything_is_made(backend: LibvirtBackend):
    spec = dataclasses.replace(make_spec("dockerfile"), dockerfile="FROM labsite/base\n")
    with pytest.raises(SandboxError, match="cannot build a Dockerfile") as refused:
        await backend.start(spec, timeout=START)
    assert_for_students(refused.value)
    assert not domain_exists(spec.name)
    assert not (OVERLAYS / f"{spec.name}.qcow2").exists()


async def test_what_libvirt_says_goes_to_the_detail_not_the_message(tmp_path: Path):
    """A template whose kernel is missing: QEMU refuses, the student reads one sentence."""
    tiny = TEMPLATES / "tiny"
    info = json.loads((tiny / "template.json").read_text())
    info.update(kernel="no-such-vmlinuz", initrd=str(tiny / info["initrd"]),
                disk=str(tiny / info["disk"]))  # fmt: skip
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "template.json").write_text(json.dumps(info))
    broken = LibvirtBackend(
        templates_dir=tmp_path, overlays_dir=OVERLAYS, virt_type="qemu", site=TEST_SITE
    )
    spec = make_spec("broken", image="broken")
    try:
        with pytest.raises(SandboxError) as failed:
            await broken.start(spec, timeout=START)
    finally:
        await broken.close()
    assert failed.value.message == "Could not start the VM."
    assert_for_students(failed.value)
    assert "no-such-vmlinuz" in failed.value.detail  # what QEMU said, for the log
    assert not domain_exists(spec.name)
    assert not (OVERLAYS / f"{spec.name}.qcow2").exists()


async def test_unknown_template_is_refused_with_a_readable_error(backend: LibvirtBackend):
    with pytest.raises(SandboxError, match="not installed") as refused:
        await backend.start(make_spec("nothing", image="no-such-template"), timeout=START)
    assert_for_students(refused.value)
    assert await backend.status(Sandbox(f"{TEST_SITE}-nothing", "", {})) == SandboxStatus.MISSING


async def test_an_engine_that_does_not_answer_is_host_unavailable(guest: Sandbox):
    gone = LibvirtBackend(uri="qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    try:
        with pytest.raises(HostUnavailable) as unavailable:
            await gone.status(guest)
    finally:
        await gone.close()
    assert_for_students(unavailable.value)
    assert "/nonexistent/libvirt-sock" in unavailable.value.detail
