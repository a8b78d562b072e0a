"""``LibvirtBackend``: each sandbox is a QEMU guest booted from a template.

How a start goes (``start``): a qcow2 overlay on the template's disk, an
isolated network if asked, a persistent domain carrying the sandbox labels in
its ``<metadata>``, started paused so the console hub sees every byte, then
resumed; the guest is usable once its console shows a shell prompt, its agent
answers and the template's ``ready_check`` passes. A "ready" metadata element
then tells ``status()`` RUNNING rather than STARTING.

Choices a reader should know:

- Terminals: one per guest, the serial console (``tab`` 1); other tabs are
  refused with ``SandboxError``. ``resize`` runs ``stty -F /dev/ttyS0 rows R
  cols C`` through the guest agent (never typed into the console), which sets
  the tty size and sends SIGWINCH to the program in front.
- Checks run through qemu-guest-agent (``agent.py``), outside the console.
- Networks: ``"none"`` gives no NIC; ``"isolated"`` gives a NIC on a bridge of
  its own with no host address, DHCP or forwarding: no route to the host, to
  other guests or outside (no outbound access either).
- ``virt_type="auto"`` tries KVM once per host (``detect.py``); ``virt_type``
  and ``virt_evidence`` show the answer to admins.
- libvirt's event loop runs on the asyncio loop (``events.py``); every other
  libvirt call goes through this backend's own bounded executor.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import libvirt

from provisioning.base import (
    CheckResult,
    HostUnavailable,
    ProgressCallback,
    Sandbox,
    SandboxError,
    SandboxSpec,
    SandboxStats,
    SandboxStatus,
    Terminal,
)
from provisioning.libvirt import detect, domains, host
from provisioning.libvirt.agent import GuestAgent
from provisioning.libvirt.console import ConsoleHub
from provisioning.libvirt.domain_xml import (
    NS_SANDBOX,
    NS_STATE,
    PREFIX_STATE,
    DomainConfig,
    SandboxMeta,
    domain_xml,
    network_name,
    parse_metadata,
    ready_xml,
)
from provisioning.libvirt.events import ensure_registered
from provisioning.libvirt.startup import Reporter, validate_spec, wait_usable
from provisioning.libvirt.templates import VMTemplate, load_template

log = logging.getLogger(__name__)
T = TypeVar("T")

_LIVE_STATES = (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED,
                libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED)  # fmt: skip


class LibvirtBackend:
    """Sandboxes as libvirt/QEMU guests. See the module docstring and ``provisioning.base``."""

    kind = "libvirt"

    def __init__(
        self,
        uri: str = "qemu:///system",
        templates_dir: Path = Path("var/vm/templates"),
        overlays_dir: Path = Path("var/vm/overlays"),
        virt_type: str = "auto",
        max_workers: int = 4,
        *,
        site: str | None = None,
        console_buffer: int = 64 * 1024,
        kvm_probe_timeout: float = 15.0,
    ) -> None:
        if virt_type not in ("auto", "kvm", "qemu"):
            raise ValueError(f"virt_type must be auto, kvm or qemu, not {virt_type!r}")
        self.uri = uri
        self.templates_dir = Path(templates_dir).resolve()
        self.overlays_dir = Path(overlays_dir).resolve()
        self.site = site
        #: "kvm" or "qemu" once known; "auto" until the first start or detect_virt_type().
        self.virt_type = virt_type
        #: Why ``virt_type`` is what it is, for admins.
        self.virt_evidence: dict[str, Any] = {} if virt_type == "auto" else {"configured": True}
        self._auto = virt_type == "auto"
        self._console_buffer = console_buffer
        self._kvm_probe_timeout = kvm_probe_timeout
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="libvirt")
        self._conn: libvirt.virConnect | None = None
        self._conn_lock = asyncio.Lock()
        self._detect_lock = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}
        self._hubs: dict[str, ConsoleHub] = {}
        self._cpu: dict[str, tuple[float, int]] = {}
        #: Seconds from start() to each phase of the last start of each sandbox (benchmarks).
        self.start_timings: dict[str, dict[str, float]] = {}
        self.agent = GuestAgent(self._call)
        # libvirt prints every error on stderr besides raising it; the exception is enough.
        libvirt.registerErrorHandler(domains.ignore_error, None)

    # --- plumbing -----------------------------------------------------------

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        """Run a blocking call in the executor; a lost connection becomes HostUnavailable."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(func, *args))
        except libvirt.libvirtError as exc:
            if domains.connection_lost(exc):
                self._conn = None
                raise HostUnavailable(f"libvirt at {self.uri} does not answer: {exc}") from exc
            raise

    async def _connection(self) -> libvirt.virConnect:
        ensure_registered()
        async with self._conn_lock:
            if self._conn is None or not self._conn.isAlive():
                try:
                    self._conn = await self._call(domains.open_connection, self.uri)
                except libvirt.libvirtError as exc:
                    raise HostUnavailable(f"libvirt at {self.uri} does not answer: {exc}") from exc
            return self._conn

    async def _lookup(self, name: str) -> libvirt.virDomain | None:
        conn = await self._connection()
        try:
            return await self._call(conn.lookupByName, name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise domains.engine_error("find the VM", exc) from exc

    async def _running(self, sandbox: Sandbox) -> libvirt.virDomain:
        dom = await self._lookup(sandbox.name)
        if dom is None or not await self._call(dom.isActive):
            raise SandboxError("The VM is not running.")
        return dom

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    # --- KVM or TCG ---------------------------------------------------------

    async def detect_virt_type(self, *, force: bool = False) -> str:
        """Resolve ``virt_type`` "auto" to "kvm" or "qemu" (cached per host; see detect.py)."""
        if not self._auto:
            return self.virt_type
        async with self._detect_lock:
            if self.virt_type != "auto" and not force:
                return self.virt_type
            conn = await self._connection()
            key = await self._call(detect.host_key, conn)
            cache = self.templates_dir / detect.CACHE_FILE
            found = None if force else await self._call(detect.read_cache, cache, key)
            cached = found is not None
            if found is None:
                tiny = await self._probe_template()
                found = await detect.probe_kvm(
                    conn, self._call, tiny, within=self._kvm_probe_timeout
                )
                found.evidence["key"] = key
                await self._call(detect.write_cache, cache, key, found)
            self.virt_type = found.virt_type
            self.virt_evidence = {**found.evidence, "cached": cached}
        return self.virt_type

    async def _probe_template(self) -> VMTemplate:
        try:
            return await self._call(load_template, self.templates_dir, "tiny")
        except SandboxError as exc:
            raise SandboxError(
                "Cannot tell whether this host runs VMs with KVM: the probe boots the 'tiny' "
                "template, which is not built (python -m provisioning.images.vm_templates tiny)."
            ) from exc

    # --- start --------------------------------------------------------------

    async def start(
        self, spec: SandboxSpec, on_progress: ProgressCallback | None = None
    ) -> Sandbox:
        report = Reporter(spec.name, on_progress)
        template = await self._call(load_template, self.templates_dir, spec.image)
        validate_spec(spec, template)
        async with self._lock(spec.name):
            dom = await self._lookup(spec.name)
            if dom is not None and await self._call(dom.isActive):
                if not await self._is_ready(dom):
                    await self._become_usable(dom, spec, template, report)
                report(100, "ready")
                return Sandbox(spec.name, dom.UUIDString(), dict(spec.labels))
            if dom is not None:
                log.info("%s exists but is stopped: making it anew", spec.name)
                await self._remove(spec.name)
            if self._auto and self.virt_type == "auto":
                report(2, "checking once whether this host runs VMs with KVM")
            virt_type = await self.detect_virt_type()
            return await self._create(spec, template, virt_type, report)

    async def _create(
        self, spec: SandboxSpec, template: VMTemplate, virt_type: str, report: Reporter
    ) -> Sandbox:
        overlay = self.overlays_dir / f"{spec.name}.qcow2" if template.disk else None
        console_log = self.overlays_dir / f"{spec.name}.console.log"
        network = network_name(spec.name) if spec.network == "isolated" else None
        meta = SandboxMeta(
            labels=dict(spec.labels), template=template.name, overlay=str(overlay or ""),
            network=network or "", console_log=str(console_log),
        )  # fmt: skip
        conn = await self._connection()
        try:
            report(5, "preparing the VM's disk")
            await self._call(host.make_dir, self.overlays_dir)
            if template.disk is not None and overlay is not None:
                size = max(spec.resources.disk_mib, template.disk_mib)
                await self._call(host.make_overlay, template.disk, overlay, size)
            if network is not None:
                await self._call(host.ensure_network, conn, network)
            config = DomainConfig(
                name=spec.name, virt_type=virt_type, vcpus=max(1, math.ceil(spec.resources.cpus)),
                memory_mib=spec.resources.memory_mib, kernel=template.kernel,
                initrd=template.initrd, meta=meta, disk=overlay, network=network,
                cmdline=f"{template.cmdline} systemd.hostname={spec.hostname}",
                console_log=console_log,
            )  # fmt: skip
            report(10, f"starting the VM ({virt_type})")
            report.mark("prepared")
            dom = await self._call(conn.defineXML, domain_xml(config))
            await self._call(dom.createWithFlags, libvirt.VIR_DOMAIN_START_PAUSED)
            await self._hub_for(conn, dom, spec.name)
            await self._call(dom.resume)
            report.mark("domain_started")
            await self._become_usable(dom, spec, template, report)
        except Exception as exc:  # not CancelledError: a later start() adopts the booting guest
            log.warning("start of %s failed (%s): removing what was made", spec.name, exc)
            await self._remove(spec.name)
            if isinstance(exc, SandboxError):
                raise
            raise domains.engine_error("start the VM", exc) from exc
        report(100, "ready")
        return Sandbox(spec.name, dom.UUIDString(), dict(spec.labels))

    async def _become_usable(
        self, dom: libvirt.virDomain, spec: SandboxSpec, template: VMTemplate, report: Reporter
    ) -> None:
        """Wait until the guest is usable (startup.py), then mark it ready in its metadata."""
        hub = await self._hub_for(await self._connection(), dom, spec.name)
        await wait_usable(hub, self.agent, dom, spec, template, report)
        when = datetime.now(UTC).isoformat(timespec="seconds")
        await self._call(dom.setMetadata, libvirt.VIR_DOMAIN_METADATA_ELEMENT, ready_xml(when),
                         PREFIX_STATE, NS_STATE, libvirt.VIR_DOMAIN_AFFECT_LIVE)  # fmt: skip
        report.mark("ready")
        self.start_timings[spec.name] = dict(report.marks)

    async def _is_ready(self, dom: libvirt.virDomain) -> bool:
        try:
            flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
            await self._call(dom.metadata, libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS_STATE, flags)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN_METADATA,
                                        libvirt.VIR_ERR_OPERATION_INVALID):  # fmt: skip
                return False
            raise domains.engine_error("read the VM's state", exc) from exc
        return True

    # --- consoles -----------------------------------------------------------

    async def _hub_for(
        self, conn: libvirt.virConnect, dom: libvirt.virDomain, name: str
    ) -> ConsoleHub:
        """The console hub of a running guest, opened (and seeded from its log) if needed."""
        uuid = dom.UUIDString()
        async with self._lock(f"console:{name}"):
            hub = self._hubs.get(name)
            if hub is not None and not hub.closed and hub.uuid == uuid:
                return hub
            meta = await self._meta(dom)
            seed = None
            if meta is not None and meta.console_log:
                seed = await self._call(host.tail, Path(meta.console_log), self._console_buffer)
            hub = ConsoleHub(name, uuid, self._call, limit=self._console_buffer)
            await hub.open(conn, dom, seed or b"")
            hub.complete = seed is not None and len(seed) < self._console_buffer
            old, self._hubs[name] = self._hubs.get(name), hub
            if old is not None:
                await old.close()
            return hub

    async def open_terminal(self, sandbox: Sandbox, *, tab: int, cols: int, rows: int) -> Terminal:
        if tab != 1:
            raise SandboxError("A VM has one terminal, its serial console (tab 1).")
        dom = await self._running(sandbox)
        hub = await self._hub_for(await self._connection(), dom, sandbox.name)
        resize = functools.partial(self.agent.resize_console, dom, sandbox.name)
        terminal = hub.attach(resize)
        await terminal.resize(cols=cols, rows=rows)
        return terminal

    # --- the rest of the contract ------------------------------------------

    async def stop(self, sandbox: Sandbox) -> None:
        await self._remove(sandbox.name)

    async def _remove(self, name: str) -> None:
        """Destroy and undefine the domain; delete its overlay, log and network. Idempotent."""
        hub = self._hubs.pop(name, None)
        if hub is not None:
            await hub.close()
        conn = await self._connection()
        dom = await self._lookup(name)
        meta = await self._meta(dom) if dom is not None else None
        if dom is not None:
            await self._call(domains.destroy_and_undefine, dom)
        await self._call(host.remove_network, conn, (meta and meta.network) or network_name(name))
        files = {self.overlays_dir / f"{name}.qcow2", self.overlays_dir / f"{name}.console.log"}
        files |= {Path(p) for p in (meta.overlay, meta.console_log) if p} if meta else set()
        await self._call(host.remove_files, *files)
        self._cpu.pop(name, None)
        self.agent.forget(name)
        self.start_timings.pop(name, None)
        for key in (name, f"console:{name}"):
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]
        log.info("removed %s", name)

    async def _meta(self, dom: libvirt.virDomain) -> SandboxMeta | None:
        try:
            xml = await self._call(dom.metadata, libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS_SANDBOX, 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN_METADATA,
                                        libvirt.VIR_ERR_NO_DOMAIN):  # fmt: skip
                return None
            raise domains.engine_error("read the VM's labels", exc) from exc
        return parse_metadata(xml)

    async def status(self, sandbox: Sandbox) -> SandboxStatus:
        dom = await self._lookup(sandbox.name)
        if dom is None:
            return SandboxStatus.MISSING
        try:
            state, _reason = await self._call(dom.state)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return SandboxStatus.MISSING
            raise domains.engine_error("read the VM's state", exc) from exc
        if state not in _LIVE_STATES:
            return SandboxStatus.EXITED
        return SandboxStatus.RUNNING if await self._is_ready(dom) else SandboxStatus.STARTING

    async def list_sandboxes(self) -> list[Sandbox]:
        conn = await self._connection()
        return await self._call(domains.labelled_domains, conn, self.site)

    async def run_check(
        self,
        sandbox: Sandbox,
        script: str,
        *,
        timeout: float,
    ) -> CheckResult:
        dom = await self._running(sandbox)
        return await self.agent.run_script(dom, script, timeout)

    async def stats(self, sandbox: Sandbox) -> SandboxStats:
        dom = await self._running(sandbox)
        if sandbox.name not in self._cpu:
            self._cpu[sandbox.name] = (time.monotonic(), (await self._call(dom.info))[4])
            await asyncio.sleep(0.5)
        info = await self._call(dom.info)
        memory = await self._call(dom.memoryStats)
        now = time.monotonic()
        then, cpu_then = self._cpu[sandbox.name]
        self._cpu[sandbox.name] = (now, info[4])
        percent = (info[4] - cpu_then) / 1e9 / max(now - then, 1e-3) * 100
        return SandboxStats(
            memory_bytes=int(memory.get("rss", info[2])) * 1024,
            memory_limit_bytes=int(info[1]) * 1024,
            cpu_percent=round(max(percent, 0.0), 1),
        )

    async def host_facts(self) -> dict[str, Any]:
        """For admins: KVM or TCG (detected by booting a guest, cached) and why."""
        virt_type = await self.detect_virt_type()
        conn = await self._connection()
        version = await self._call(conn.getLibVersion)
        return {
            "engine": "libvirt",
            "virt_type": virt_type,
            "virt_evidence": self.virt_evidence,
            "libvirt_version": f"{version // 1000000}.{version // 1000 % 1000}.{version % 1000}",
        }

    async def close(self) -> None:
        for hub in list(self._hubs.values()):
            await hub.close()
        self._hubs.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await self._call(conn.close)
            except (libvirt.libvirtError, HostUnavailable) as exc:
                log.debug("closing the libvirt connection: %s", exc)
        self._executor.shutdown(wait=False, cancel_futures=True)
