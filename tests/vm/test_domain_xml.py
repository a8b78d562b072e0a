"""The XML the libvirt backend sends, compared with golden files, and the backend's other
pure helpers (what a domain's state means, prompt recognition); no libvirtd needed.

After an intended change, regenerate the files with
``LABSITE_UPDATE_GOLDEN=1 pytest tests/vm/test_domain_xml.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from provisioning.base import SandboxStatus
from provisioning.libvirt.domain_xml import (
    DomainConfig,
    SandboxMeta,
    bridge_name,
    domain_xml,
    metadata_element,
    network_name,
    network_xml,
    parse_metadata,
)
from provisioning.libvirt.domains import describe_state
from provisioning.libvirt.templates import VMTemplate

GOLDEN = Path(__file__).parent / "golden"
LABELS = {
    "labsite.site": "labsite",
    "labsite.session": "0b7e4d0e-5c1a-4f0e-9d6b-2f3c1a5e8d90",
    "labsite.owner": "alice",
    "labsite.lab": "linux-virt/guest-view",
}


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LABSITE_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; see the module docstring"


def config(**changes: object) -> DomainConfig:
    base = {
        "name": "labsite-0b7e4d0e",
        "virt_type": "qemu",
        "vcpus": 1,
        "memory_mib": 256,
        "kernel": Path("/srv/vm/templates/tiny/vmlinuz"),
        "initrd": Path("/srv/vm/templates/tiny/initrd.img"),
        "cmdline": "console=ttyS0 quiet panic=-1 systemd.hostname=lab",
        "meta": SandboxMeta(
            labels=LABELS,
            template="tiny",
            overlay="/srv/vm/overlays/labsite-0b7e4d0e.qcow2",
            console_log="/srv/vm/overlays/labsite-0b7e4d0e.console.log",
        ),
        "disk": Path("/srv/vm/overlays/labsite-0b7e4d0e.qcow2"),
        "console_log": Path("/srv/vm/overlays/labsite-0b7e4d0e.console.log"),
        "uuid": "4b0d8a52-3c52-4f7e-9a86-51c8a1f0e2d7",
    }
    return DomainConfig(**{**base, **changes})  # type: ignore[arg-type]


def test_tiny_guest_without_network_under_tcg():
    assert_golden("domain-tiny-qemu.xml", domain_xml(config()))


def test_guest_on_an_isolated_network_under_kvm():
    network = network_name("labsite-0b7e4d0e")
    xml = domain_xml(config(virt_type="kvm", vcpus=2, memory_mib=2048, network=network))
    assert_golden("domain-kvm-isolated.xml", xml)


def test_isolated_network_has_no_address_dhcp_or_forwarding():
    xml = network_xml(network_name("labsite-0b7e4d0e"))
    assert_golden("network-isolated.xml", xml)
    root = ET.fromstring(xml)  # noqa: S314 (our own output)
    assert root.find("ip") is None and root.find("forward") is None


def test_names_are_deterministic_and_fit_linux_limits():
    assert network_name("a") == network_name("a") != network_name("b")
    assert len(bridge_name(network_name("x" * 100))) <= 15


def test_text_is_escaped():
    xml = domain_xml(config(cmdline="console=ttyS0 a<b&c"))
    assert "<cmdline>console=ttyS0 a&lt;b&amp;c</cmdline>" in xml


@pytest.mark.parametrize("namespaced", [True, False])
def test_metadata_reads_back_as_written_and_as_libvirt_returns_it(namespaced: bool):
    meta = SandboxMeta(labels=LABELS, template="debian", network="labsite-abc", overlay="/o")
    text = ET.tostring(metadata_element(meta), encoding="unicode")
    if not namespaced:  # libvirt hands the element back without its prefix
        text = re.sub(r"\s*xmlns:labsite=\"[^\"]+\"", "", text.replace("labsite:", ""))
    assert parse_metadata(text) == meta


def prompt_template() -> VMTemplate:
    from provisioning.images.vm_templates import PROMPT_REGEX

    return VMTemplate(
        name="t", folder=Path("/t"), kernel=Path("/k"), initrd=Path("/i"), disk=None,
        cmdline="", prompt=re.compile(PROMPT_REGEX.encode(), re.MULTILINE), ready_check="",
        boot_timeout=1, min_memory_mib=1, disk_mib=0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("output", "ready"),
    [
        (b"\x1b[1;32mroot@lab\x1b[0m:\x1b[1;34m~\x1b[0m# \x1b[6n", True),  # busybox, coloured
        (b"Linux lab 6.1.0\r\n\x1b[1;32mroot@lab\x1b[0m:\x1b[1;34m~\x1b[0m# ", True),  # bash
        (b"root@lab:/tmp# ", True),
        (b"[    1.234] Run /init as init process\r\n", False),
        (b"lab login: ", False),
    ],
)
def test_prompt_is_recognised_through_colours(output: bytes, ready: bool):
    assert prompt_template().shows_prompt(output) is ready


@pytest.mark.parametrize(
    ("state", "reason", "ready", "status", "detail"),
    [
        (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED, False,
         SandboxStatus.STARTING, ""),
        (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_STARTING_UP, False,
         SandboxStatus.STARTING, ""),
        (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_UNPAUSED, True,
         SandboxStatus.RUNNING, ""),
        (libvirt.VIR_DOMAIN_BLOCKED, 0, True, SandboxStatus.RUNNING, ""),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN, False,
         SandboxStatus.EXITED, "the VM was powered off"),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_CRASHED, False,
         SandboxStatus.EXITED, "the VM crashed"),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED, False,
         SandboxStatus.EXITED, "the VM was switched off on its host"),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_UNKNOWN, False,
         SandboxStatus.EXITED, "the VM stopped (its host may have restarted)"),
        (libvirt.VIR_DOMAIN_CRASHED, libvirt.VIR_DOMAIN_CRASHED_PANICKED, False,
         SandboxStatus.EXITED, "the VM crashed"),
        (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_IOERROR, True,
         SandboxStatus.EXITED, "the VM stopped after a disk error on its host"),
    ],
)  # fmt: skip
def test_libvirt_states_read_as_the_site_statuses(
    state: int, reason: int, ready: bool, status: SandboxStatus, detail: str
):
    assert describe_state(state, reason, ready) == (status, detail)
