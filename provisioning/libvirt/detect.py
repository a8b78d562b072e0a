"""Whether KVM really boots guests on a host: tried once, then remembered.

``/dev/kvm`` existing proves little: under nested virtualisation a KVM guest can
hang right after the kernel starts. So the backend boots the ``tiny`` template
once with ``<domain type='kvm'>`` and watches its serial console for the shell
prompt. A prompt within ``timeout`` seconds means ``kvm``; anything else (libvirt
refuses, QEMU fails, the console stays silent) means ``qemu``, i.e. TCG.

The answer and its evidence are cached in ``virt-type.json`` under the templates
folder, keyed by the host name, kernel, QEMU and libvirt versions, so the probe
runs again after an upgrade. Delete the file to force a new probe.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import libvirt

from provisioning.base import SandboxError
from provisioning.libvirt.console import ConsoleHub
from provisioning.libvirt.domain_xml import DomainConfig, SandboxMeta, domain_xml
from provisioning.libvirt.templates import VMTemplate, load_template

log = logging.getLogger(__name__)

CACHE_FILE = "virt-type.json"
PROBE_PREFIX = "labsite-virt-probe-"

Call = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Detection:
    virt_type: str
    evidence: dict[str, Any]


async def detect(
    conn: libvirt.virConnect, call: Call, templates_dir: Path, *, within: float, force: bool
) -> Detection:
    """The cached answer for this host, or a new probe's (then cached); ``force`` probes."""
    key = await call(host_key, conn)
    cache = templates_dir / CACHE_FILE
    found = None if force else await call(read_cache, cache, key)
    if found is not None:
        return Detection(found.virt_type, {**found.evidence, "cached": True})
    try:
        tiny = await call(load_template, templates_dir, "tiny")
    except SandboxError as exc:
        raise SandboxError(
            "This host is not ready for VM labs yet.",
            detail="telling KVM from TCG boots the 'tiny' template, which is not built "
            "(python -m provisioning.images.vm_templates tiny)",
        ) from exc
    found = await probe_kvm(conn, call, tiny, within=within)
    found.evidence["key"] = key
    await call(write_cache, cache, key, found)
    return Detection(found.virt_type, {**found.evidence, "cached": False})


def host_key(conn: libvirt.virConnect) -> dict[str, str]:
    """What the answer depends on (blocking: call it in the executor)."""
    return {
        "host": conn.getHostname(),
        "kernel": os.uname().release,
        "qemu": str(conn.getVersion()),
        "libvirt": str(conn.getLibVersion()),
    }


def read_cache(path: Path, key: dict[str, str]) -> Detection | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    entry = data.get(json.dumps(key, sort_keys=True)) if isinstance(data, dict) else None
    if not isinstance(entry, dict) or entry.get("virt_type") not in ("kvm", "qemu"):
        return None
    return Detection(entry["virt_type"], dict(entry.get("evidence", {})))


def write_cache(path: Path, key: dict[str, str], detection: Detection) -> None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[json.dumps(key, sort_keys=True)] = {
        "virt_type": detection.virt_type,
        "evidence": detection.evidence,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


async def probe_kvm(
    conn: libvirt.virConnect, call: Call, template: VMTemplate, *, within: float
) -> Detection:
    """Boot ``template`` once under KVM and report what happened."""
    await call(_remove_leftover_probes, conn)
    name = PROBE_PREFIX + secrets.token_hex(4)
    config = DomainConfig(
        name=name, virt_type="kvm", vcpus=1, memory_mib=max(256, template.min_memory_mib),
        kernel=template.kernel, initrd=template.initrd, cmdline=template.cmdline,
        meta=SandboxMeta(labels={}, template=template.name),
    )  # fmt: skip
    evidence: dict[str, Any] = {
        "tried": "kvm",
        "template": template.name,
        "timeout_s": within,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    started = time.monotonic()
    hub = ConsoleHub(name, "", call, limit=4096)
    dom: libvirt.virDomain | None = None
    try:
        dom = await call(conn.createXML, domain_xml(config), libvirt.VIR_DOMAIN_START_PAUSED)
        await hub.open(conn, dom, b"")
        await call(dom.resume)
        booted = await hub.wait_until(template.shows_prompt, within)
        evidence.update(booted=booted, seconds=round(time.monotonic() - started, 1))
        evidence["console_tail"] = hub.snapshot()[-300:].decode("utf-8", errors="replace")
    except libvirt.libvirtError as exc:
        evidence.update(booted=False, error=str(exc).strip()[:500])
    finally:
        await hub.close()
        if dom is not None:
            await call(_destroy_quietly, dom)
    virt_type = "kvm" if evidence.get("booted") else "qemu"
    log.info("virt type for this host: %s (%s)", virt_type, evidence)
    return Detection(virt_type, evidence)


def _destroy_quietly(dom: libvirt.virDomain) -> None:
    try:
        dom.destroy()
    except libvirt.libvirtError as exc:
        log.debug("probe domain already gone: %s", exc)


def _remove_leftover_probes(conn: libvirt.virConnect) -> None:
    """A probe interrupted by a crash leaves a transient domain behind: remove it."""
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT):
        if dom.name().startswith(PROBE_PREFIX):
            log.info("removing leftover probe domain %s", dom.name())
            _destroy_quietly(dom)
