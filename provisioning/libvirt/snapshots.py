"""Booted snapshots: each template booted once, saved, and restored by every session.

A *snapshot* is a guest booted from a template until it was usable (prompt, agent,
``ready_check``), then saved with ``virDomainSave``: its memory (``memory.save``) and
its copy-on-write disk (``disk.qcow2``, an overlay on the template's disk) at the same
instant, since the save stops the guest. A session then gets

- its own qcow2 overlay *on the snapshot's disk*: the snapshot's files are never
  written (the disk is made read-only), each session writes only to its overlay;
- a domain restored from ``memory.save`` with ``virDomainRestoreFlags`` and an XML of
  its own (:func:`session_xml`): its name, UUID, overlay, console log, network and
  labels; devices, MAC address and the rest stay as they were saved (libvirt checks
  that the restored guest's ABI is the saved one's).

libvirt also insists that the UUID of that XML is the UUID written in the save file's
header. Two sessions cannot share a UUID, so each restore reads a save image of its
own: the snapshot's header and XML rewritten with the session's XML, followed by the
snapshot's QEMU migration stream, fed through a FIFO (:func:`restore`). Nothing is
copied to disk and the snapshot's file stays untouched, so any number of sessions may
restore from it at the same time.

A snapshot is found by a key (:func:`fingerprint`): the template's files (template.json's
bytes, and each image file's size and mtime), the guest's shape (virt type, vCPUs,
memory, disk size, NIC or not), the domain XML the backend would write for that shape,
the QEMU and libvirt versions and :data:`SNAPSHOT_VERSION`. A start whose key has no
snapshot boots cold (as before) and asks for one to be built in the background; a
rebuilt template has a new key, and once its new snapshot is in place the old ones of
that template are removed. Builds take a file lock per key (one build per key across
processes), are made in a scratch folder and renamed into place.

Blocking helpers here run in the backend's executor; the asynchronous steps of a build
and of a restore are driven by ``backend.py``. No Django.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import shlex
import shutil
import struct
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import libvirt

from provisioning.base import SandboxError
from provisioning.libvirt.agent import AgentUnavailable, GuestAgent
from provisioning.libvirt.domain_xml import (
    DomainConfig,
    SandboxMeta,
    domain_xml,
    metadata_element,
)
from provisioning.libvirt.templates import VMTemplate

log = logging.getLogger(__name__)

#: Bump to rebuild every snapshot after a change to how they are made or restored.
SNAPSHOT_VERSION = 1
#: Name prefix of the domains that boot a template to save it (never site-labelled).
BUILD_PREFIX = "labsite-snapshot-"
MEMORY_FILE = "memory.save"
DISK_FILE = "disk.qcow2"
MANIFEST_FILE = "manifest.json"
#: Seconds a restored guest's agent may take to answer before the start boots cold.
RESTORE_AGENT_WAIT = 30.0

Call = Callable[..., Awaitable[Any]]

# --- keys ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What of a start a snapshot is made for (what its guest's hardware is)."""

    template: str
    virt_type: str
    vcpus: int
    memory_mib: int
    #: The overlay's virtual size in MiB (0: the template's size, or no disk at all).
    disk_mib: int
    #: Whether the guest has a NIC (network "isolated").
    nic: bool


def template_identity(template: VMTemplate) -> dict[str, Any]:
    """The template's files as they are now: a rebuilt or touched template differs."""
    files: dict[str, Any] = {}
    for label, path in (("kernel", template.kernel), ("initrd", template.initrd),
                        ("disk", template.disk)):  # fmt: skip
        if path is not None:
            stat = path.stat()
            files[label] = [str(path), stat.st_size, stat.st_mtime_ns]
    info = (template.folder / "template.json").read_bytes()
    return {"json": hashlib.sha256(info).hexdigest()[:16], "files": files}


def fingerprint(template: VMTemplate, shape: Shape, engine: dict[str, str]) -> dict[str, Any]:
    """Everything a snapshot depends on (blocking: reads the template's files)."""
    # The XML the backend writes for this shape, with placeholders for what each guest
    # has of its own: a change to domain_xml.py changes the key.
    config = DomainConfig(
        name="snapshot", virt_type=shape.virt_type, vcpus=shape.vcpus,
        memory_mib=shape.memory_mib, kernel=template.kernel, initrd=template.initrd,
        cmdline=template.cmdline, meta=SandboxMeta(labels={}, template=template.name),
        disk=Path("/disk") if template.disk else None,
        network="net" if shape.nic else None, console_log=Path("/log"),
    )  # fmt: skip
    return {
        "version": SNAPSHOT_VERSION,
        "shape": asdict(shape),
        "template": template_identity(template),
        "xml": hashlib.sha256(domain_xml(config).encode()).hexdigest()[:16],
        "engine": dict(engine),
    }


def key_of(fp: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


def engine_versions(conn: libvirt.virConnect) -> dict[str, str]:
    return {"qemu": str(conn.getVersion()), "libvirt": str(conn.getLibVersion())}


# --- the store -------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    folder: Path
    key: str
    manifest: dict[str, Any]

    @property
    def memory(self) -> Path:
        return self.folder / MEMORY_FILE

    @property
    def disk(self) -> Path | None:
        return self.folder / DISK_FILE if self.manifest.get("disk") else None


class SnapshotStore:
    """Snapshots under ``root``: ``<template>-<key>/`` with memory, disk and manifest."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder(self, template: str, key: str) -> Path:
        return self.root / f"{template}-{key}"

    def find(self, template: str, key: str, fp: dict[str, Any]) -> Snapshot | None:
        """The snapshot for ``key`` if it is complete and made for exactly ``fp``."""
        folder = self.folder(template, key)
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict) or manifest.get("fingerprint") != fp:
            return None
        snapshot = Snapshot(folder, key, manifest)
        if not snapshot.memory.is_file() or (snapshot.disk and not snapshot.disk.is_file()):
            return None
        return snapshot

    def all(self) -> list[Snapshot]:
        found = []
        for manifest_file in sorted(self.root.glob(f"*/{MANIFEST_FILE}")):
            try:
                manifest = json.loads(manifest_file.read_text())
                found.append(Snapshot(manifest_file.parent, manifest["key"], manifest))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return found

    def try_lock(self, key: str) -> int | None:
        """An exclusive lock on building ``key`` (a file descriptor), or None if another
        process (or thread) holds it."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @staticmethod
    def unlock(fd: int) -> None:
        os.close(fd)  # releases the flock

    def scratch(self, template: str, key: str) -> Path:
        """An empty folder to build ``key`` in (only ever used under its key's lock)."""
        path = self.root / f".build-{template}-{key}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def commit(self, scratch: Path, template: str, key: str, manifest: dict[str, Any]) -> Snapshot:
        (scratch / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        final = self.folder(template, key)
        if final.exists():  # an incomplete or stale copy under the same key
            shutil.rmtree(final)
        scratch.rename(final)
        return Snapshot(final, key, manifest)

    def prune_stale(self, template: str, identity: dict[str, Any]) -> list[Path]:
        """Remove the snapshots of ``template`` made from other files than ``identity``
        (the template was rebuilt: they will never be restored again). Guests restored
        from one keep running: QEMU holds its files open."""
        removed = []
        for snapshot in self.all():
            fp = snapshot.manifest.get("fingerprint", {})
            if snapshot.manifest.get("template") == template and fp.get("template") != identity:
                shutil.rmtree(snapshot.folder, ignore_errors=True)
                removed.append(snapshot.folder)
        for path in removed:
            log.info("removed stale snapshot %s", path)
        return removed

    def discard(self, snapshot: Snapshot) -> None:
        """Remove a snapshot that failed to restore, so that it is built again."""
        log.warning("discarding snapshot %s", snapshot.folder)
        shutil.rmtree(snapshot.folder, ignore_errors=True)


# --- save images -----------------------------------------------------------------------

#: libvirt's QEMU save image header (src/qemu/qemu_saveimage.h): magic, version,
#: data_len, was_running, compressed, cookieOffset, 15 unused. ``data`` (the domain XML,
#: NUL, then the cookie XML and padding) follows, then QEMU's migration stream.
_HEADER = struct.Struct("<16s19I")
_MAGIC = b"LibvirtQemudSave"


@dataclass(frozen=True)
class SaveImage:
    fields: tuple[int, ...]
    xml: str
    cookie: bytes
    #: Where QEMU's migration stream starts in the file, and the file's size.
    stream_offset: int
    size: int

    def with_xml(self, xml: str) -> bytes:
        """The header and data of a save image like this one but with ``xml``."""
        encoded = xml.encode() + b"\0"
        data = encoded + self.cookie + b"\0"
        data += b"\0" * max(0, self.fields[1] - len(data))  # keep libvirt's padding
        fields = list(self.fields)
        fields[1], fields[4] = len(data), len(encoded) if self.cookie else 0
        return _HEADER.pack(_MAGIC, *fields) + data


def read_save_image(path: Path) -> SaveImage:
    """Parse a save image made by ``virDomainSave`` (uncompressed, version 2)."""
    with path.open("rb") as image:
        head = image.read(_HEADER.size)
        if len(head) != _HEADER.size:
            raise ValueError(f"{path}: too short for a save image")
        magic, *fields = _HEADER.unpack(head)
        version, data_len, _running, compressed, cookie_offset = fields[:5]
        if magic != _MAGIC or version != 2 or compressed != 0:
            raise ValueError(f"{path}: not an uncompressed version-2 save image")
        data = image.read(data_len)
        size = os.fstat(image.fileno()).st_size
    xml_end = cookie_offset or data_len
    xml = data[:xml_end].split(b"\0", 1)[0].decode()
    cookie = data[cookie_offset:].split(b"\0", 1)[0] if cookie_offset else b""
    return SaveImage(tuple(fields), xml, cookie, _HEADER.size + data_len, size)


def session_xml(
    saved: str,
    *,
    name: str,
    uuid: str,
    meta: SandboxMeta,
    disk: Path | None,
    console_log: Path,
    network: str | None,
) -> str:
    """The saved guest's XML made one session's: what libvirt lets differ on a restore."""
    root = ET.fromstring(saved)  # noqa: S314 (libvirt's own output)
    _child(root, "name").text = name
    _child(root, "uuid").text = uuid
    metadata = root.find("metadata")
    if metadata is None:
        metadata = ET.SubElement(root, "metadata")
    for child in list(metadata):  # the builder's labels and any "ready" mark
        metadata.remove(child)
    metadata.append(metadata_element(meta))
    devices = _child(root, "devices")
    for element in devices.findall("disk"):
        if element.get("device") == "disk" and disk is not None:
            source = _child(element, "source")
            source.attrib = {"file": str(disk)}
            for backing in element.findall("backingStore"):
                element.remove(backing)
    for tag in ("serial", "console"):
        for element in devices.findall(tag):
            for source in element.findall("source"):  # the saved guest's PTY
                element.remove(source)
            for log_element in element.findall("log"):
                log_element.set("file", str(console_log))
    for element in devices.findall("interface"):
        if network is None:
            raise ValueError("the snapshot has a NIC but the session no network")
        element.set("type", "network")
        source = _child(element, "source")
        source.attrib = {"network": network}
        for target in element.findall("target"):
            element.remove(target)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _child(parent: ET.Element, tag: str) -> ET.Element:
    found = parent.find(tag)
    if found is None:
        raise ValueError(f"the saved domain XML has no <{tag}>")
    return found


def restore(conn: libvirt.virConnect, memory: Path, fifo: Path, xml: str, flags: int) -> None:
    """Restore a guest from the snapshot ``memory`` as the domain ``xml`` (blocking).

    libvirt reads a save image from ``fifo``: the snapshot's header and data rewritten
    for ``xml``, then the snapshot's migration stream, written by a thread of ours."""
    image = read_save_image(memory)
    head = image.with_xml(xml)
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o600)
    failed: list[BaseException] = []

    def feed() -> None:
        try:
            out = os.open(fifo, os.O_WRONLY)  # waits for libvirt to open it
            try:
                _write_all(out, head)
                with memory.open("rb") as source:
                    offset, end = image.stream_offset, image.size
                    while offset < end:
                        sent = os.sendfile(out, source.fileno(), offset, min(end - offset, 1 << 24))
                        if sent == 0:
                            break
                        offset += sent
            finally:
                os.close(out)
        except OSError as exc:  # BrokenPipe: libvirt stopped reading (it failed)
            failed.append(exc)

    feeder = threading.Thread(target=feed, name=f"restore-{fifo.name}", daemon=True)
    feeder.start()
    try:
        conn.restoreFlags(str(fifo), xml, flags)
    finally:
        # If libvirt never opened the FIFO the feeder still waits for a reader: be one.
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        feeder.join(60)
        fifo.unlink(missing_ok=True)
        if failed:
            log.info("restore from %s: feeding the image stopped: %s", memory, failed[0])


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# --- after a restore -------------------------------------------------------------------


async def refresh_guest(
    agent: GuestAgent, dom: libvirt.virDomain, hostname: str, within: float
) -> None:
    """What a restored guest needs before it is usable: the host's time (it resumes at
    the instant it was saved), the session's host name and fresh randomness from the
    host mixed into its pool. SandboxError if its agent does not answer."""
    if not await agent.wait(dom, within):
        raise AgentUnavailable("The VM's agent did not answer after the restore.")
    try:
        await agent.command(dom, "guest-set-time", time=time.time_ns())
    except AgentUnavailable as exc:
        # qemu-ga sets the clock, then fails if ``hwclock -w`` does: set it again plainly.
        log.info("guest-set-time: %s; setting the clock with date", exc.detail)
        result = await agent.run_script(dom, f"date -u -s @{time.time():.0f} >/dev/null", 10)
        if not result.passed:
            log.warning("the restored guest's clock was not set: %s", result.output)
    script = (
        f"printf %s {shlex.quote(hostname)} > /proc/sys/kernel/hostname; "
        f"printf %s {secrets.token_hex(64)} > /dev/urandom"
    )
    result = await agent.run_script(dom, script, 10)
    if not result.passed:
        log.warning("restored guest: host name not set: %s", result.output)


def build_manifest(
    template: VMTemplate, key: str, fp: dict[str, Any], seconds: float, saved_xml: str
) -> dict[str, Any]:
    return {
        "key": key,
        "template": template.name,
        "fingerprint": fp,
        "disk": template.disk is not None,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "boot_seconds": round(seconds, 1),
        "saved_xml_sha256": hashlib.sha256(saved_xml.encode()).hexdigest()[:16],
    }


# --- command line ----------------------------------------------------------------------


def parse_target(text: str) -> tuple[str, int, float, str, int]:
    """``TEMPLATE[:MEMORY_MIB[:CPUS[:NETWORK[:DISK_MIB]]]]``, defaults 512, 1, none, 1024."""
    parts = text.split(":")
    if not 1 <= len(parts) <= 5 or not parts[0]:
        raise argparse.ArgumentTypeError(f"not TEMPLATE[:MEMORY[:CPUS[:NETWORK[:DISK]]]]: {text}")
    defaults = ["", "512", "1", "none", "1024"]
    parts += defaults[len(parts) :]
    try:
        return parts[0], int(parts[1]), float(parts[2]), parts[3], int(parts[4])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


#: Built by ``scripts/setup.sh``: what the tests, the benchmark and the course's labs use.
DEFAULT_TARGETS = (
    "tiny:256",
    "tiny:256:1:isolated",
    "debian:512",
    "debian:768",
    "debian:1024",
    "debian-docker:1024",
)


async def _main(argv: list[str] | None = None) -> int:
    from provisioning.base import Resources
    from provisioning.libvirt.backend import LibvirtBackend

    parser = argparse.ArgumentParser(
        description="Build booted snapshots (skipped when up to date).",
        epilog="Targets are TEMPLATE[:MEMORY_MIB[:CPUS[:NETWORK[:DISK_MIB]]]]; "
        f"default: {' '.join(DEFAULT_TARGETS)} (templates not built are skipped).",
    )
    parser.add_argument("command", choices=["build", "list"])
    parser.add_argument("targets", nargs="*", type=parse_target)
    parser.add_argument("--templates", type=Path, default=Path("var/vm/templates"))
    parser.add_argument("--snapshots", type=Path, default=None)
    parser.add_argument("--uri", default="qemu:///system")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    backend = LibvirtBackend(
        uri=args.uri, templates_dir=args.templates, snapshots_dir=args.snapshots,
        overlays_dir=args.templates.parent / "overlays",
    )  # fmt: skip
    failed = 0
    try:
        if args.command == "list":
            for snapshot in SnapshotStore(backend.snapshots_dir).all():
                shape = snapshot.manifest["fingerprint"]["shape"]
                print(snapshot.folder, json.dumps(shape, sort_keys=True))
            return 0
        targets = args.targets or [parse_target(t) for t in DEFAULT_TARGETS]
        for image, memory, cpus, network, disk in targets:
            if not (args.templates / image / "template.json").exists():
                print(f"skipping {image}: template not built")
                continue
            resources = Resources(cpus=cpus, memory_mib=memory, disk_mib=disk)
            try:
                snapshot = await backend.build_snapshot(image, resources, network)
            except SandboxError as exc:
                failed += 1
                print(f"{image}:{memory}:{cpus:g}:{network}:{disk}: FAILED: {exc} {exc.detail}")
                continue
            print(f"{image}:{memory}:{cpus:g}:{network}:{disk}: {snapshot.folder}")
    finally:
        await backend.close()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(_main()))
