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
import contextlib
import functools
import logging
import math
import os
import shlex
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from uuid import uuid4

import libvirt

from provisioning.base import (
    CheckResult,
    HostUnavailable,
    ProgressCallback,
    Resources,
    Sandbox,
    SandboxError,
    SandboxSpec,
    SandboxStats,
    SandboxStatus,
    Terminal,
)
from provisioning.libvirt import detect, domains, host, snapshots
from provisioning.libvirt.agent import GuestAgent
from provisioning.libvirt.console import TAKEN, ConsoleHub, ConsoleHubs
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
from provisioning.libvirt.snapshots import Shape, Snapshot, SnapshotStore
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

#: Why a guest is paused when a start died between creating (or restoring) and resuming it.
_PAUSED_BY_START = (
    libvirt.VIR_DOMAIN_PAUSED_USER,
    libvirt.VIR_DOMAIN_PAUSED_STARTING_UP,
    libvirt.VIR_DOMAIN_PAUSED_MIGRATION,  # restored with VIR_DOMAIN_SAVE_PAUSED
)


class _RestoreFailed(Exception):
    """A restore from a snapshot failed before the guest was usable: boot cold instead."""


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
        snapshots_dir: Path | None = None,
        use_snapshots: bool = False,
    ) -> None:
        if virt_type not in ("auto", "kvm", "qemu"):
            raise ValueError(f"virt_type must be auto, kvm or qemu, not {virt_type!r}")
        self.uri = uri
        self.templates_dir = Path(templates_dir).resolve()
        self.overlays_dir = Path(overlays_dir).resolve()
        #: Booted snapshots (snapshots.py): beside the templates unless said otherwise.
        snapshots_dir = snapshots_dir or self.templates_dir.parent / "snapshots"
        self.snapshots_dir = Path(snapshots_dir).resolve()
        #: Restore starts from snapshots; False: every start boots (and none is built).
        #: Snapshots need the libvirt host's files, so only a local URI uses them.
        self.use_snapshots = use_snapshots and _local(uri)
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
        #: How the last start of each sandbox went: "restored" or "cold: <why>" (admins, bench).
        self.start_modes: dict[str, str] = {}
        self._store = SnapshotStore(self.snapshots_dir)
        self._snapshot_builds: dict[str, asyncio.Task[Snapshot | None]] = {}
        self._engine: dict[str, str] | None = None
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
        """Restore the guest from its template's booted snapshot if there is one; else (or
        if the restore fails) boot it, and have the snapshot built for the next start."""
        snapshot, why = None, "snapshots are off"
        if self.use_snapshots:
            try:
                snapshot, why = await self._snapshot_for(spec, template, virt_type)
            except (OSError, ValueError, libvirt.libvirtError) as exc:
                log.warning("%s: no snapshot looked up (%s)", spec.name, exc)
                why = f"snapshot lookup failed: {exc}"
        if snapshot is not None:
            try:
                return await self._make(spec, template, virt_type, report, snapshot)
            except _RestoreFailed as exc:
                cause = exc.__cause__
                if isinstance(cause, HostUnavailable):
                    raise cause from None
                why = f"restoring its snapshot failed: {cause}"
                log.warning("%s: %s; booting it instead", spec.name, why)
                await self._call(self._store.discard, snapshot)
                self._want_snapshot(template, self._shape(spec, template, virt_type))
        log.info("%s: cold boot (%s)", spec.name, why)
        return await self._make(spec, template, virt_type, report, None, why)

    async def _make(
        self,
        spec: SandboxSpec,
        template: VMTemplate,
        virt_type: str,
        report: Reporter,
        snapshot: Snapshot | None,
        why: str = "",
    ) -> Sandbox:
        """Make the guest: booted from the template, or restored from ``snapshot``."""
        name = spec.name
        overlay = self.overlays_dir / f"{name}.qcow2" if template.disk else None
        console_log = self.overlays_dir / f"{name}.console.log"
        network = network_name(name) if spec.network == "isolated" else None
        meta = SandboxMeta(
            labels=dict(spec.labels), template=template.name, overlay=str(overlay or ""),
            network=network or "", console_log=str(console_log),
        )  # fmt: skip
        conn = await self._connection()
        restoring = snapshot is not None
        try:
            report(5, "preparing the VM's disk")
            await self._call(host.make_dir, self.overlays_dir)
            base = snapshot.disk if snapshot is not None else template.disk
            if base is not None and overlay is not None:
                size = max(spec.resources.disk_mib, template.disk_mib)
                await self._build.run(name, host.make_overlay, base, overlay, size)
            if network is not None:
                await self._build.run(name, host.ensure_network, conn, network)
            uuid = str(uuid4())
            if snapshot is None:
                config = DomainConfig(
                    name=name, virt_type=virt_type,
                    vcpus=max(1, math.ceil(spec.resources.cpus)),
                    memory_mib=spec.resources.memory_mib, kernel=template.kernel,
                    initrd=template.initrd, meta=meta, disk=overlay, network=network,
                    cmdline=f"{template.cmdline} systemd.hostname={spec.hostname}",
                    console_log=console_log, uuid=uuid,
                )  # fmt: skip
                report(10, f"starting the VM ({virt_type})")
                report.mark("prepared")
                xml = domain_xml(config)
                paused = libvirt.VIR_DOMAIN_START_PAUSED
                dom = await self._build.run(name, conn.createXML, xml, paused)
                await self._build.run(name, conn.defineXML, xml)  # persistent: EXITED, not gone
            else:
                report(10, f"restoring the VM from its snapshot ({virt_type})")
                report.mark("prepared")
                image = await self._call(snapshots.read_save_image, snapshot.memory)
                xml = snapshots.session_xml(
                    image.xml, name=name, uuid=uuid, meta=meta, disk=overlay,
                    console_log=console_log, network=network,
                )  # fmt: skip
                fifo = self.overlays_dir / f"{name}.restore"
                paused = libvirt.VIR_DOMAIN_SAVE_PAUSED
                await self._build.run(name, snapshots.restore, conn, snapshot.memory, fifo, xml,
                                      paused)  # fmt: skip
                dom = await self._call(conn.lookupByName, name)
                await self._build.run(name, conn.defineXML, xml)  # persistent, as a cold one
            hub = await self._hub_for(conn, dom, name)
            await self._call(dom.resume)
            report.mark("domain_started")
            if snapshot is not None:
                await self._refresh(dom, hub, spec, template, report)
            restoring = False
            self.start_modes[name] = "restored" if snapshot is not None else f"cold: {why}"
            await self._become_usable(dom, spec, template, report)
        except Exception as exc:  # not CancelledError: the caller then calls stop()
            log.warning("start of %s failed (%s): removing what was made", name, exc)
            await self._remove(name)
            if restoring:
                raise _RestoreFailed(str(exc)) from exc
            if isinstance(exc, SandboxError):
                raise
            raise domains.engine_error("start the VM", exc) from exc
        report(100, "ready")
        log.info("%s started in %.1f s (%s)", name, report.marks.get("ready", 0),
                 self.start_modes.get(name))  # fmt: skip
        return Sandbox(name, dom.UUIDString(), dict(spec.labels))

    async def _refresh(
        self, dom: libvirt.virDomain, hub: ConsoleHub, spec: SandboxSpec, template: VMTemplate,
        report: Reporter,
    ) -> None:  # fmt: skip
        """A restored guest: its clock, host name and randomness set, and a fresh prompt
        asked for on its console (it was saved at one)."""
        report(40, "waking the VM up")
        await snapshots.refresh_guest(self.agent, dom, spec.hostname, snapshots.RESTORE_AGENT_WAIT)
        report.mark("refreshed")
        if not hub.usable:
            return  # a student's terminal took the console: they see the shell as it is
        try:
            await hub.write(b"\n")
        except ConnectionError:
            return
        if not await hub.wait_until(template.shows_prompt, 15.0):
            if hub.closed and hub.ended_reason == TAKEN:
                return
            raise SandboxError("The restored VM shows no prompt.")

    # --- booted snapshots ---------------------------------------------------

    def _shape(self, spec: SandboxSpec, template: VMTemplate, virt_type: str) -> Shape:
        return _shape_of(spec.resources, spec.network, template, virt_type)

    async def _engine_versions(self) -> dict[str, str]:
        if self._engine is None:
            conn = await self._connection()
            self._engine = await self._call(snapshots.engine_versions, conn)
        return self._engine

    async def _key(self, template: VMTemplate, shape: Shape) -> tuple[str, dict[str, Any]]:
        fp = await self._call(snapshots.fingerprint, template, shape, await self._engine_versions())
        return snapshots.key_of(fp), fp

    async def _snapshot_for(
        self, spec: SandboxSpec, template: VMTemplate, virt_type: str
    ) -> tuple[Snapshot | None, str]:
        """The snapshot this start can be restored from, or None and why not (a build of
        it is then asked for)."""
        shape = self._shape(spec, template, virt_type)
        key, fp = await self._key(template, shape)
        found = await self._call(self._store.find, template.name, key, fp)
        if found is not None:
            return found, ""
        self._want_snapshot(template, shape, key, fp)
        return None, f"no snapshot {template.name}-{key} yet: building it"

    def _want_snapshot(
        self, template: VMTemplate, shape: Shape, key: str | None = None,
        fp: dict[str, Any] | None = None,
    ) -> asyncio.Task[Snapshot | None]:  # fmt: skip
        """The background build of the snapshot for ``shape`` (one per key at a time)."""
        task = self._snapshot_builds.get(key or repr(shape))
        if task is None or task.done():
            task = asyncio.ensure_future(self._build_snapshot(template, shape, key, fp))
            label = key or repr(shape)
            self._snapshot_builds[label] = task
            task.add_done_callback(functools.partial(self._snapshot_built, label))
        return task

    def _snapshot_built(self, label: str, task: asyncio.Task[Snapshot | None]) -> None:
        if self._snapshot_builds.get(label) is task:
            del self._snapshot_builds[label]
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.warning("building a snapshot failed: %s %s", exc, getattr(exc, "detail", ""))

    async def build_snapshot(
        self, image: str, resources: Resources | None = None, network: str = "none",
        *, within: float = 900.0,
    ) -> Snapshot:  # fmt: skip
        """The booted snapshot that starts of ``image`` with ``resources`` and ``network``
        restore from: built now (and waited for) if missing or stale, or waited for if
        another process builds it. SandboxError if it cannot be built."""
        template = await self._call(load_template, self.templates_dir, image)
        virt_type = await self.detect_virt_type()
        shape = _shape_of(resources or Resources(), network, template, virt_type)
        deadline = time.monotonic() + within
        while True:
            key, fp = await self._key(template, shape)
            found = await self._call(self._store.find, template.name, key, fp)
            if found is not None:
                return found
            built = await asyncio.shield(self._want_snapshot(template, shape, key, fp))
            if built is not None:
                return built
            if time.monotonic() > deadline:  # another process held the lock all along
                raise SandboxError("The VM snapshot was not built in time.")
            await asyncio.sleep(1.0)

    async def wait_snapshot_builds(self) -> None:
        """Wait for the snapshot builds running in the background (tests, benchmarks)."""
        while self._snapshot_builds:
            await asyncio.gather(*self._snapshot_builds.values(), return_exceptions=True)

    def snapshots(self) -> list[Snapshot]:
        """The snapshots on this host (blocking; for admins and benchmarks)."""
        return self._store.all()

    async def _build_snapshot(
        self, template: VMTemplate, shape: Shape, key: str | None, fp: dict[str, Any] | None
    ) -> Snapshot | None:
        """Boot ``template`` as ``shape`` until usable, save it and keep it as a snapshot;
        None if another process holds this key's lock (it builds the same snapshot)."""
        if key is None or fp is None:
            key, fp = await self._key(template, shape)
        lock = await self._call(self._store.try_lock, key)
        if lock is None:
            log.info("snapshot %s-%s: another process builds it", template.name, key)
            return None
        name = snapshots.BUILD_PREFIX + key
        network = network_name(name) if shape.nic else None
        scratch: Path | None = None
        conn = await self._connection()
        try:
            found = await self._call(self._store.find, template.name, key, fp)
            if found is not None:
                return found
            started = time.monotonic()
            log.info("building snapshot %s-%s: %s", template.name, key, shape)
            await self._call(_discard_domain, conn, name)  # left by a crash mid-build
            scratch = await self._call(self._store.scratch, template.name, key)
            disk = scratch / snapshots.DISK_FILE if template.disk else None
            console_log = scratch / "console.log"
            if template.disk is not None and disk is not None:
                await self._build.run(name, host.make_overlay, template.disk, disk, shape.disk_mib)
            if network is not None:
                await self._build.run(name, host.ensure_network, conn, network)
            config = DomainConfig(
                name=name, virt_type=shape.virt_type, vcpus=shape.vcpus,
                memory_mib=shape.memory_mib, kernel=template.kernel, initrd=template.initrd,
                meta=SandboxMeta(labels={}, template=template.name), disk=disk,
                network=network, cmdline=f"{template.cmdline} systemd.hostname=lab",
                console_log=console_log, uuid=str(uuid4()),
            )  # fmt: skip
            paused = libvirt.VIR_DOMAIN_START_PAUSED
            # Transient, with no site label: no listing sees it, and the save removes it.
            dom = await self._build.run(name, conn.createXML, domain_xml(config), paused)
            hub = ConsoleHub(name, dom.UUIDString(), self._call, limit=16 * 1024)
            try:
                await hub.open(conn, dom, b"")
                hub.complete = True
                await self._call(dom.resume)
                spec = SandboxSpec(name=name, image=template.name, labels={})
                await wait_usable(hub, self.agent, dom, spec, template, Reporter(name, None))
                await self.agent.run_script(dom, "sync", 60)
            finally:
                await hub.close()
            memory = scratch / snapshots.MEMORY_FILE
            await self._build.run(name, dom.save, str(memory))  # memory and disk, one instant
            image = await self._call(snapshots.read_save_image, memory)
            if network is not None:
                await self._call(host.remove_network, conn, network)
            if disk is not None:
                await self._call(os.chmod, disk, 0o444)
            await self._call(host.remove_files, console_log)
            manifest = snapshots.build_manifest(
                template, key, fp, time.monotonic() - started, image.xml
            )
            snapshot = await self._call(self._store.commit, scratch, template.name, key, manifest)
            scratch = None
            await self._call(self._store.prune_stale, template.name, fp["template"])
            log.info("snapshot %s built in %.0f s", snapshot.folder, time.monotonic() - started)
            return snapshot
        except BaseException as exc:
            log.warning("building snapshot %s-%s failed: %r", template.name, key, exc)
            await self._build.settle(name)
            with contextlib.suppress(Exception):
                await self._call(_discard_domain, conn, name)
                if network is not None:
                    await self._call(host.remove_network, conn, network)
            if isinstance(exc, Exception) and not isinstance(exc, SandboxError):
                raise domains.engine_error("build the VM snapshot", exc) from exc
            raise
        finally:
            if scratch is not None:
                await asyncio.shield(self._call(shutil.rmtree, scratch, True))
            await self._call(self._store.unlock, lock)

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
        files = {self.overlays_dir / f"{name}{suffix}" for suffix in (".qcow2", ".console.log",
                                                                       ".restore")}  # fmt: skip
        files |= {Path(p) for p in (meta.overlay, meta.console_log) if p} if meta else set()
        await self._call(host.remove_files, *files)
        self._cpu.pop(name, None)
        self.agent.forget(name)
        self.start_timings.pop(name, None)
        self.start_modes.pop(name, None)
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
        builds = [task for task in self._snapshot_builds.values() if not task.done()]
        for task in builds:
            task.cancel()
        await asyncio.gather(*builds, return_exceptions=True)
        await self._consoles.close()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await self._call(conn.close)
            except (libvirt.libvirtError, HostUnavailable) as exc:
                log.debug("closing the libvirt connection: %s", exc)
        self._executor.shutdown(wait=False, cancel_futures=True)


def _shape_of(resources: Resources, network: str, template: VMTemplate, virt_type: str) -> Shape:
    return Shape(
        template=template.name, virt_type=virt_type, vcpus=max(1, math.ceil(resources.cpus)),
        memory_mib=resources.memory_mib,
        disk_mib=max(resources.disk_mib, template.disk_mib) if template.disk else 0,
        nic=network == "isolated",
    )  # fmt: skip


def _discard_domain(conn: libvirt.virConnect, name: str) -> None:
    """Remove the domain ``name`` if there is one (a snapshot build's)."""
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return
        raise
    log.info("removing leftover snapshot build domain %s", name)
    domains.undefine_and_destroy(dom)


def _local(uri: str) -> bool:
    """Whether libvirt runs on this machine (snapshots are files the backend reads)."""
    parts = urlsplit(uri)
    return parts.scheme in ("qemu", "qemu+unix") and not parts.netloc


def _seconds(timeout: float) -> str:
    whole = max(1, math.ceil(timeout))
    return "1 second" if whole == 1 else f"{whole} seconds"
