"""The files and networks a guest owns on its libvirt host: overlays, console logs, bridges.

Blocking helpers, run in the backend's executor. Paths are on the libvirt host,
so these assume the backend runs there (``qemu:///system``).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import libvirt

from provisioning.libvirt.domain_xml import bridge_name, network_xml

log = logging.getLogger(__name__)

#: Per-bridge kernel settings that keep a guest on an isolated bridge away from the host:
#: strict reverse-path filtering drops every IPv4 packet (no route leads to the bridge),
#: arp_ignore=8 answers no ARP request, and the bridge gets no IPv6 address.
BRIDGE_SYSCTLS = (
    ("net/ipv4/conf/{}/rp_filter", "1"),
    ("net/ipv4/conf/{}/arp_ignore", "8"),
    ("net/ipv6/conf/{}/disable_ipv6", "1"),
)


def make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def make_overlay(template_disk: Path, overlay: Path, size_mib: int) -> None:
    """A qcow2 copy-on-write overlay on the template's disk, at least ``size_mib`` big."""
    overlay.parent.mkdir(parents=True, exist_ok=True)
    overlay.unlink(missing_ok=True)
    command = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
               "-b", str(template_disk), str(overlay)]  # fmt: skip
    if size_mib:
        command.append(f"{size_mib}M")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"qemu-img create failed: {done.stderr.strip()}")


def tail(path: Path, limit: int) -> bytes | None:
    """The last ``limit`` bytes of a console log; None if it cannot be read (remote host)."""
    try:
        with path.open("rb") as log_file:
            log_file.seek(0, 2)
            size = log_file.tell()
            log_file.seek(max(0, size - limit))
            return log_file.read()
    except OSError:
        return None


def allocated_bytes(path: Path) -> int | None:
    """Bytes the file takes on the host's disk (a qcow2 overlay: what the guest wrote, plus
    the format's own few hundred KiB); None if it cannot be read (remote host)."""
    try:
        return path.stat().st_blocks * 512
    except OSError:
        return None


def remove_files(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove %s: %s", path, exc)


def ensure_network(conn: libvirt.virConnect, name: str) -> None:
    """Define and start the isolated network ``name`` unless it already runs."""
    try:
        net = conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_NETWORK:
            raise
        net = conn.networkDefineXML(network_xml(name))
    if not net.isActive():
        net.create()
    _harden_bridge(bridge_name(name))


def _harden_bridge(bridge: str) -> None:
    for template, value in BRIDGE_SYSCTLS:
        path = Path("/proc/sys") / template.format(bridge)
        try:
            path.write_text(value)
        except OSError as exc:
            log.warning("cannot set %s=%s: %s", path, value, exc)


def remove_network(conn: libvirt.virConnect, name: str) -> None:
    try:
        net = conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
            return
        raise
    for step in (net.destroy, net.undefine):
        try:
            step()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in (
                libvirt.VIR_ERR_NO_NETWORK,
                libvirt.VIR_ERR_OPERATION_INVALID,
            ):
                raise
            log.info("network %s: %s (treated as done)", name, exc)
