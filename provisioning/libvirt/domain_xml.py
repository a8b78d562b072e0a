"""Pure builders and parsers for the libvirt XML the backend sends and reads.

No libvirt import: these are tested against golden files without an engine.
A domain carries its sandbox labels in ``<metadata>`` under :data:`NS_SANDBOX`,
so a restarted backend finds its guests by asking libvirt alone; a second
element under :data:`NS_STATE` is set once the guest is usable.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

NS_SANDBOX = "https://labsite.example/xmlns/libvirt/sandbox/1"
NS_STATE = "https://labsite.example/xmlns/libvirt/state/1"
#: libvirt needs a prefix for each metadata namespace.
PREFIX_SANDBOX = "labsite"
PREFIX_STATE = "labsitestate"
#: qemu-guest-agent's well-known virtio-serial port name.
AGENT_CHANNEL = "org.qemu.guest_agent.0"


@dataclass(frozen=True)
class SandboxMeta:
    """What a domain remembers about its sandbox: labels and the things it owns."""

    labels: Mapping[str, str]
    template: str
    overlay: str = ""
    network: str = ""
    console_log: str = ""


@dataclass(frozen=True)
class DomainConfig:
    """Everything that goes into one domain's XML. Paths are absolute on the libvirt host."""

    name: str
    virt_type: str
    vcpus: int
    memory_mib: int
    kernel: Path
    initrd: Path
    cmdline: str
    meta: SandboxMeta
    disk: Path | None = None
    network: str | None = None
    console_log: Path | None = None
    #: Fixed by the backend, so that the running guest and its later definition match.
    uuid: str | None = None


def domain_xml(config: DomainConfig) -> str:
    """The domain definition for one sandbox (started with it, then made persistent)."""
    dom = ET.Element("domain", type=config.virt_type)
    _text(dom, "name", config.name)
    if config.uuid is not None:
        _text(dom, "uuid", config.uuid)
    metadata = ET.SubElement(dom, "metadata")
    metadata.append(metadata_element(config.meta))
    _text(dom, "memory", str(config.memory_mib), unit="MiB")
    _text(dom, "vcpu", str(config.vcpus))
    os_ = ET.SubElement(dom, "os")
    _text(os_, "type", "hvm", arch="x86_64", machine="pc")
    _text(os_, "kernel", str(config.kernel))
    _text(os_, "initrd", str(config.initrd))
    _text(os_, "cmdline", config.cmdline)
    ET.SubElement(ET.SubElement(dom, "features"), "acpi")
    if config.virt_type == "kvm":
        ET.SubElement(dom, "cpu", mode="host-passthrough")
    ET.SubElement(dom, "clock", offset="utc")
    for event, action in (("poweroff", "destroy"), ("reboot", "restart"), ("crash", "destroy")):
        _text(dom, f"on_{event}", action)
    _devices(ET.SubElement(dom, "devices"), config)
    return _serialise(dom)


def _devices(devices: ET.Element, config: DomainConfig) -> None:
    if config.disk is not None:
        disk = ET.SubElement(devices, "disk", type="file", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type="qcow2", discard="unmap")
        ET.SubElement(disk, "source", file=str(config.disk))
        ET.SubElement(disk, "target", dev="vda", bus="virtio")
    if config.network is not None:
        nic = ET.SubElement(devices, "interface", type="network")
        ET.SubElement(nic, "source", network=config.network)
        ET.SubElement(nic, "model", type="virtio")
    serial = ET.SubElement(devices, "serial", type="pty")
    if config.console_log is not None:
        ET.SubElement(serial, "log", file=str(config.console_log), append="off")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    channel = ET.SubElement(devices, "channel", type="unix")
    ET.SubElement(channel, "target", type="virtio", name=AGENT_CHANNEL)
    rng = ET.SubElement(devices, "rng", model="virtio")
    _text(rng, "backend", "/dev/urandom", model="random")
    ET.SubElement(devices, "memballoon", model="none")


def metadata_element(meta: SandboxMeta) -> ET.Element:
    """``<labsite:sandbox xmlns:labsite=...>``: the namespace declared on the element itself,
    where libvirt looks for it (ElementTree would hoist it to the root)."""
    root = ET.Element(f"{PREFIX_SANDBOX}:sandbox", {f"xmlns:{PREFIX_SANDBOX}": NS_SANDBOX})
    for key in sorted(meta.labels):
        ET.SubElement(root, f"{PREFIX_SANDBOX}:label", key=key, value=meta.labels[key])
    for tag in ("template", "overlay", "network", "console_log"):
        value = getattr(meta, tag)
        if value:
            _text(root, f"{PREFIX_SANDBOX}:{tag.replace('_', '-')}", value)
    return root


def parse_metadata(xml: str) -> SandboxMeta:
    """Read what :func:`metadata_element` wrote, as libvirt hands it back.

    libvirt returns the element without its namespace (``<sandbox><label .../>``);
    children are matched by local name so either form parses.
    """
    root = ET.fromstring(xml)  # noqa: S314 (libvirt's own output, not user input)
    labels: dict[str, str] = {}
    texts: dict[str, str] = {}
    for child in root:
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "label":
            labels[child.get("key", "")] = child.get("value", "")
        else:
            texts[tag] = child.text or ""
    return SandboxMeta(
        labels=labels,
        template=texts.get("template", ""),
        overlay=texts.get("overlay", ""),
        network=texts.get("network", ""),
        console_log=texts.get("console-log", ""),
    )


def ready_xml(when: str) -> str:
    """The element that marks a guest as usable (``status()`` says RUNNING, not STARTING)."""
    return f'<ready at="{when}"/>'


def network_name(domain: str) -> str:
    """The per-sandbox network's name and bridge suffix: short, deterministic, unique."""
    return "labsite-" + hashlib.sha256(domain.encode()).hexdigest()[:12]


def network_xml(name: str) -> str:
    """An isolated network: its own bridge, no host address, no DHCP, no forwarding.

    The guest gets a NIC on a link where nobody else is: no route to the host's
    services, to other guests, or outside.
    """
    net = ET.Element("network")
    _text(net, "name", name)
    ET.SubElement(net, "bridge", name=bridge_name(name), stp="off", delay="0")
    return _serialise(net)


def bridge_name(network: str) -> str:
    return "lsb" + network.removeprefix("labsite-")[:12]  # Linux allows 15 characters


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


def _serialise(element: ET.Element) -> str:
    ET.indent(element)
    return ET.tostring(element, encoding="unicode") + "\n"
