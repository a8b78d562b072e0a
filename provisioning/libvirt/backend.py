"""``LibvirtBackend``: each sandbox is a QEMU guest booted from a template.

How a start goes (``start``): a qcow2 overlay on the template's disk, an
isolated network if asked, the domain created *running but paused*
(``createXML``) and at once made persistent (``defineXML`` of the same XML and
UUID), its labels in its ``<metadata>``; the console hub attaches while it is
paused, so it sees every byte, then the guest resumes. It is usable once its
console shows a shell prompt, its agent answers and the template's
``ready_check`` passes; a "ready" metadata element then tells ``status()``
RUNNING rather than STARTING. The caller's ``timeout`` covers all of it: past
it, the start is cancelled, everything it made is removed and ``SandboxError``
raised. Each blocking step that makes something (overlay, network, domain) runs
to its end even when the start is cancelled, and ``_remove`` waits for it, so a
cancelled or timed-out start leaves nothing behind in this process.

Ended guests (``poweroff`` in the guest, QEMU crashed, switched off on the
host) stay defined and shut off until ``stop()``: ``status()`` and
``list_sandboxes()`` say EXITED, with the reason in plain words
(``domains.describe_state``), while a guest that was removed is MISSING.
Because a domain is defined only once it runs, "shut off" never means "being
made". ``stop()`` undefines before it destroys, so a guest on its way out goes
from RUNNING to MISSING and never looks EXITED.

Choices a reader should know:

- Terminals: one per guest, the serial console (``tab`` 1); other tabs are
  refused with ``SandboxError``. ``resize`` runs ``stty -F /dev/ttyS0 rows R
  cols C`` through the guest agent (never typed into the console), which sets
  the tty size and sends SIGWINCH to the program in front. Viewers in other
  processes take the console over from each other once per open, never in a
  loop: see ``console.py`` and ``ConsoleTerminal.ended_reason``.
- Checks run through qemu-guest-agent (``agent.py``), outside the console; what
  that can and cannot guarantee is in ``docs/vm-checks.md``.
- Networks: ``"none"`` gives no NIC; ``"isolated"`` gives a NIC on a bridge of
  its own with no host address, DHCP or forwarding: no route to the host, to
  other guests or outside (no outbound access either).
- ``virt_type="auto"`` tries KVM once per host (``detect.py``); ``virt_type``
  and ``virt_evidence`` show the answer to admins.
- ``SandboxError.message`` is a sentence for the student; what libvirt or QEMU
  said is in ``detail`` (``domains.engine_error``).
- libvirt's event loop runs on the asyncio loop (``events.py``); every other
  libvirt call goes through this backend's own bounded executor.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

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
from provisioning.libvirt.console import ConsoleHub, ConsoleHubs
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
from provisioning.libvirt.startup import (
    BuildSteps,
    Reporter,
    retrieve,
    validate_spec,
    wait_usable,
)
from provisioning.libvirt.templates import VMTemplate, load_template

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Why a guest is paused when a start died between creating and resuming it.
_PAUSED_BY_START = (libvirt.VIR_DOMAIN_PAUSED_USER, libvirt.VIR_DOMAIN_PAUSED_STARTING_UP)


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
        self._kvm_probe_timeout = kvm_probe_timeout
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="libvirt")
        self._conn: libvirt.virConnect | None = None
        self._conn_lock = asyncio.Lock()
        self._detect_lock = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}
        self._consoles = ConsoleHubs(self._call, limit=console_buffer)
        self._cpu: dict[str, tuple[float, int]] = {}
        #: The blocking steps of starts that make something (``_remove`` waits for them).
        self._build = BuildSteps(self._call)
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
                raise self._unavailable(exc) from exc
            raise

    def _unavailable(self, exc: BaseException) -> HostUnavailable:
        return HostUnavailable("The VM host does not answer.", detail=f"{self.uri}: {exc}")

    async def _connection(self) -> libvirt.virConnect:
        ensure_registered()
        async with self._conn_lock:
            if self._conn is None or not self._conn.isAlive():
                try:
                    self._conn = await self._call(domains.open_connection, self.uri)
                except libvirt.libvirtError as exc:
                    raise self._unavailable(exc) from exc
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
            found = await detect.detect(conn, self._call, self.templates_dir, force=force,
                                        within=self._kvm_probe_timeout)  # fmt: skip
            self.virt_type, self.virt_evidence = found.virt_type, found.evidence
        return self.virt_type

    # --- start --------------------------------------------------------------

    async def start(
        self, spec: SandboxSpec, on_progress: ProgressCallback | None = None, *, timeout: float
    ) -> Sandbox:
        if spec.dockerfile:
            raise SandboxError(
                "VM labs cannot build a Dockerfile.",
                detail=f"{spec.name}: the lab gives a dockerfile but runs on libvirt",
            )
        report = Reporter(spec.name, on_progress)
        try:
            async with asyncio.timeout(timeout):
                return await self._start(spec, report)
        except TimeoutError:
            log.warning("start of %s ran past %g s (%s): removing it", spec.name, timeout,
                        report.last)  # fmt: skip
            await self._remove(spec.name)
            raise SandboxError(
                f"The VM did not start within {_seconds(timeout)}.",
                detail=f"timed out after {timeout:g} s at: {report.last}",
            ) from None

    async def _start(self, spec: SandboxSpec, report: Reporter) -> Sandbox:
        template = await self._call(load_template, self.templates_dir, spec.image)
        validate_spec(spec, template)
        async with self._lock(spec.name):
            dom = await self._lookup(spec.name)
            if dom is not None and await self._call(dom.isActive):
                if not await self._is_ready(dom):
                    await self._adopt(dom)
                    await self._become_usable(dom, spec, template, report)
                report(100, "ready")
                return Sandbox(spec.name, dom.UUIDString(), dict(spec.labels))
            if dom is not None:
                log.info("%s exists but is stopped: making it anew", spec.name)
                await self._remove(spec.name)
            if self._auto and self.virt_type == "auto":
                report(2, "checking once whether this host runs VMs with KVM")
            # Shared by every start on this host and not cut short by one start's timeout.
            detection = asyncio.ensure_future(self.detect_virt_type())
            detection.add_done_callback(retrieve)
            virt_type = await asyncio.shield(detection)
            return await self._create(spec, template, virt_type, report)

    async def _create(
        self, spec: SandboxSpec, template: VMTemplate, virt_type: str, report: Reporter
    ) -> Sandbox:
        name = spec.name
        overlay = self.overlays_dir / f"{name}.qcow2" if template.disk else None
        console_log = self.overlays_dir / f"{name}.console.log"
        network = network_name(name) if spec.network == "isolated" else None
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
                await self._build.run(name, host.make_overlay, template.disk, overlay, size)
            if network is not None:
                await self._build.run(name, host.ensure_network, conn, network)
            config = DomainConfig(
                name=name, virt_type=virt_type, vcpus=max(1, math.ceil(spec.resources.cpus)),
                memory_mib=spec.resources.memory_mib, kernel=template.kernel,
                initrd=template.initrd, meta=meta, disk=overlay, network=network,
                cmdline=f"{template.cmdline} systemd.hostname={spec.hostname}",
                console_log=console_log, uuid=str(uuid4()),
            )  # fmt: skip
            report(10, f"starting the VM ({virt_type})")
            report.mark("prepared")
            xml = domain_xml(config)
            paused = libvirt.VIR_DOMAIN_START_PAUSED
            dom = await self._build.run(name, conn.createXML, xml, paused)
            await self._build.run(name, conn.defineXML, xml)  # persistent: EXITED, not gone
            await self._hub_for(conn, dom, name)
            await self._call(dom.resume)
            report.mark("domain_started")
            await self._become_usable(dom, spec, template, report)
        except Exception as exc:  # not CancelledError: the caller then calls stop()
            log.warning("start of %s failed (%s): removing what was made", name, exc)
            await self._remove(name)
            if isinstance(exc, SandboxError):
                raise
            raise domains.engine_error("start the VM", exc) from exc
        report(100, "ready")
        return Sandbox(name, dom.UUIDString(), dict(spec.labels))

    async def _adopt(self, dom: libvirt.virDomain) -> None:
        """Finish a guest that a start which died left half-made (transient, still paused)."""
        if not await self._call(dom.isPersistent):
            xml = await self._call(dom.XMLDesc, libvirt.VIR_DOMAIN_XML_INACTIVE)
            await self._call((await self._connection()).defineXML, xml)
        state, reason = await self._call(dom.state)
        if state == libvirt.VIR_DOMAIN_PAUSED and reason in _PAUSED_BY_START:
            await self._call(dom.resume)

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
            return await self._call(domains.is_ready, dom)
        except libvirt.libvirtError as exc:
            raise domains.engine_error("read the VM's state", exc) from exc

    # --- consoles -----------------------------------------------------------

    async def _hub_for(
        self, conn: libvirt.virConnect, dom: libvirt.virDomain, name: str
    ) -> ConsoleHub:
        """The console hub of a running guest, opened (and seeded from its log) if needed."""
        for _ in range(100):  # QEMU is still starting (its console has no PTY yet): ~1 s
            if not await self._call(domains.starting_up, dom):
                break
            await asyncio.sleep(0.1)

        async def console_log() -> Path | None:
            meta = await self._meta(dom)
            return Path(meta.console_log) if meta is not None and meta.console_log else None

        return await self._consoles.get(conn, dom, name, console_log)

    async def open_terminal(self, sandbox: Sandbox, *, tab: int, cols: int, rows: int) -> Terminal:
        if tab != 1:
            raise SandboxError("A VM has one terminal, its serial console (tab 1).")
        dom = await self._running(sandbox)
        try:
            hub = await self._hub_for(await self._connection(), dom, sandbox.name)
        except libvirt.libvirtError as exc:
            raise domains.engine_error("open the VM's console", exc) from exc
        resize = functools.partial(self.agent.resize_console, dom, sandbox.name)
        terminal = hub.attach(resize)
        await terminal.resize(cols=cols, rows=rows)
        return terminal

    # --- the rest of the contract ------------------------------------------

    async def stop(self, sandbox: Sandbox) -> None:
        await self._remove(sandbox.name)

    async def _remove(self, name: str) -> None:
        """Undefine and destroy the domain; delete its overlay, log and network. Idempotent.
        A blocking step of a start still running in this process is waited for first."""
        await self._build.settle(name)
        await self._consoles.drop(name)
        conn = await self._connection()
        dom = await self._lookup(name)
        meta = await self._meta(dom) if dom is not None else None
        if dom is not None:
            await self._call(domains.undefine_and_destroy, dom)
        await self._call(host.remove_network, conn, (meta and meta.network) or network_name(name))
        files = {self.overlays_dir / f"{name}.qcow2", self.overlays_dir / f"{name}.console.log"}
        files |= {Path(p) for p in (meta.overlay, meta.console_log) if p} if meta else set()
        await self._call(host.remove_files, *files)
        self._cpu.pop(name, None)
        self.agent.forget(name)
        self.start_timings.pop(name, None)
        lock = self._locks.get(name)
        if lock is not None and not lock.locked():
            del self._locks[name]
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
            status, _detail = await self._call(domains.domain_status, dom)
        except libvirt.libvirtError as exc:
            raise domains.engine_error("read the VM's state", exc) from exc
        return status

    async def list_sandboxes(self) -> list[Sandbox]:
        conn = await self._connection()
        try:
            return await self._call(domains.labelled_domains, conn, self.site)
        except libvirt.libvirtError as exc:
            raise domains.engine_error("list the VMs", exc) from exc

    async def run_check(
        self,
        sandbox: Sandbox,
        script: str,
        *,
        timeout: float,
    ) -> CheckResult:
        dom = await self._running(sandbox)
        return await self.agent.run_script(dom, script, timeout)

    async def run_script(self, sandbox: Sandbox, script: str, *, timeout: float) -> CheckResult:
        """``script`` with the guest's ``sh`` in ``/root`` (checks run there the same way:
        a guest has no tools of the platform's), through the agent, killed past ``timeout``."""
        dom = await self._running(sandbox)
        return await self.agent.run_script(dom, f"cd /root && exec sh -c {shlex.quote(script)}",
                                           timeout)  # fmt: skip

    async def stats(self, sandbox: Sandbox) -> SandboxStats:
        dom = await self._running(sandbox)
        if sandbox.name not in self._cpu:
            self._cpu[sandbox.name] = (time.monotonic(), (await self._call(dom.info))[4])
            await asyncio.sleep(0.5)
        info = await self._call(dom.info)
        memory = await self._call(dom.memoryStats)
        meta = await self._meta(dom)
        overlay = Path(meta.overlay) if meta is not None and meta.overlay else None
        disk = await self._call(host.allocated_bytes, overlay) if overlay else None
        now = time.monotonic()
        then, cpu_then = self._cpu[sandbox.name]
        self._cpu[sandbox.name] = (now, info[4])
        percent = (info[4] - cpu_then) / 1e9 / max(now - then, 1e-3) * 100
        return SandboxStats(
            memory_bytes=int(memory.get("rss", info[2])) * 1024,
            memory_limit_bytes=int(info[1]) * 1024,
            cpu_percent=round(max(percent, 0.0), 1),
            disk_bytes=disk,
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
        await self._consoles.close()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await self._call(conn.close)
            except (libvirt.libvirtError, HostUnavailable) as exc:
                log.debug("closing the libvirt connection: %s", exc)
        self._executor.shutdown(wait=False, cancel_futures=True)


def _seconds(timeout: float) -> str:
    whole = max(1, math.ceil(timeout))
    return "1 second" if whole == 1 else f"{whole} seconds"
