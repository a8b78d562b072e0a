"""DockerBackend: lab containers on a Docker Engine, through the docker SDK.

Read ``start`` top to bottom: it is the whole life of a sandbox's birth in small steps.
Blocking SDK calls go through one of three bounded thread pools, one budget per kind of
work, so that a class's worth of container creations never delays a keystroke's resize
or a terminal attach: ``interactive`` (inspect, list, exec create/resize for terminals),
``checks`` (exec bookkeeping of checks), ``slow`` (create, start, remove, image builds).
Terminal and check output streams are read by the event loop itself (``stream.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import docker
import docker.errors
import docker.tls
import requests.exceptions

from provisioning.base import (
    LABEL_SITE,
    CheckResult,
    HostUnavailable,
    Progress,
    ProgressCallback,
    Sandbox,
    SandboxError,
    SandboxSpec,
    SandboxStats,
    SandboxStatus,
)
from provisioning.docker import config
from provisioning.docker.exec_output import read_exec_output
from provisioning.docker.stream import HijackError, open_exec_stream, tls_context
from provisioning.docker.terminal import DockerTerminal
from provisioning.docker.tools import ensure_tools
from provisioning.executor import BlockingCalls

log = logging.getLogger(__name__)
T = TypeVar("T")
CHECK_OUTPUT_LIMIT = 4000
#: A lab's setup script may run this long (within the start's own timeout).
SETUP_TIMEOUT = 120
#: Private, link-local and carrier-grade NAT ranges: an ``isolated`` lab reaches none of
#: them (no cloud metadata at 169.254.169.254, no campus network, no other lab).
BLOCKED_DESTINATIONS = (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10",
    "127.0.0.0/8", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4",
)  # fmt: skip


class DockerBackend:
    kind = "docker"

    def __init__(
        self,
        *,
        site: str,
        base_url: str = "unix:///var/run/docker.sock",
        max_workers: int = 8,
        check_workers: int = 4,
        slow_workers: int = 8,
        isolate_host: bool = True,
        tools_dir: str = "/var/lib/labsite/tools",
        busybox: str = "/bin/busybox",
        disk_quota: str = "auto",
        tls_ca: str = "",
        tls_cert: str = "",
        tls_key: str = "",
    ) -> None:
        self.site = site
        self.base_url = base_url
        #: tcp:// engines are reached with TLS client certificates (dockerd --tlsverify).
        self._tls = (tls_ca, tls_cert, tls_key)
        self._stream_context = None
        self.isolate_host = isolate_host
        self.interactive = BlockingCalls("docker-io", max_workers)
        self.checks = BlockingCalls("docker-check", check_workers)
        self.slow = BlockingCalls("docker-slow", slow_workers)
        self._tools = (tools_dir, busybox)
        self._tools_ready: str | None = None
        #: "auto": try the storage driver's quota once, fall back to measuring.
        self._hard_quota: bool | None = {"auto": None, "hard": True}.get(disk_quota, False)
        self._api: docker.APIClient | None = None
        self._firewalled = False
        self._runtimes: set[str] | None = None
        self._image_builds: dict[str, asyncio.Lock] = {}

    # -- plumbing ---------------------------------------------------------------------------

    async def _call(
        self, fn: Callable[..., T], *args: Any, budget: BlockingCalls | None = None, **kwargs: Any
    ) -> T:
        """Run one SDK call off the loop, turning "engine unreachable" into HostUnavailable."""
        try:
            return await (budget or self.interactive).run(fn, *args, **kwargs)
        except (requests.exceptions.ConnectionError, FileNotFoundError) as exc:
            raise HostUnavailable(
                "The lab servers cannot be reached.", detail=f"Docker Engine at {self.base_url}"
            ) from exc

    async def api(self) -> docker.APIClient:
        if self._api is None:
            # version="auto" asks the engine at construction, so build it off the loop; the
            # SDK reports an engine that does not answer then as a bare DockerException.
            try:
                self._api = await self._call(
                    _EngineClient, base_url=self.base_url, version="auto", timeout=120,
                    **self._connection_options(),
                )  # fmt: skip
            except docker.errors.DockerException as exc:
                raise HostUnavailable(
                    "The lab servers cannot be reached.", detail=f"{self.base_url}: {exc}"
                ) from exc
        return self._api

    def _stream_tls(self):
        if self._stream_context is None and any(self._tls):
            self._stream_context = tls_context(*self._tls)
        return self._stream_context

    def _connection_options(self) -> dict:
        if self.base_url.startswith("ssh://"):
            # The system's ssh client (keys, known_hosts, ProxyJump from ~/.ssh/config)
            # rather than paramiko, which the site does not ship.
            return {"use_ssh_client": True}
        ca, cert, key = self._tls
        if cert or ca:
            return {
                "tls": docker.tls.TLSConfig(
                    client_cert=(cert, key) if cert else None, ca_cert=ca or None, verify=bool(ca)
                )
            }
        return {}

    # -- the contract -----------------------------------------------------------------------

    async def start(
        self, spec: SandboxSpec, on_progress: ProgressCallback | None = None, *, timeout: float
    ) -> Sandbox:
        try:
            async with asyncio.timeout(timeout):
                return await self._start(spec, on_progress or (lambda progress: None))
        except TimeoutError:
            await self._remove(await self.api(), spec.name)
            raise SandboxError(
                "The lab environment took too long to start.", detail=f"over {timeout} s"
            ) from None

    async def _start(self, spec: SandboxSpec, report: ProgressCallback) -> Sandbox:
        api = await self.api()
        report(Progress(10, "checking the image"))
        await self._ensure_image(spec, report)
        existing = await self._inspect(api, spec.name)
        if existing and existing["State"]["Running"] and await self._is_ready(api, spec):
            log.info("sandbox %s already running, adopting it", spec.name)
            return self._sandbox(existing)
        if existing:
            # Stopped, or left half-way by a worker that died before its setup was done.
            await self._remove(api, spec.name)
        report(Progress(30, "preparing the network"))
        network = await self._ensure_network(api, spec)
        report(Progress(50, "creating the container"))
        container_id = await self._create(api, spec, network)
        report(Progress(70, "starting the container"))
        try:
            await self._call(api.start, container_id, budget=self.slow)
            if spec.setup_script:
                report(Progress(85, "running the lab's setup"))
                await self._run_setup(api, container_id, spec.setup_script)
                await self._exec_output(api, container_id, config.mark_ready_command())
        except BaseException:
            # By id: should another worker have taken this start over, the name is its.
            await self._remove(api, container_id)
            raise
        report(Progress(100, "ready"))
        log.info("sandbox %s started (%s)", spec.name, container_id[:12])
        return Sandbox(name=spec.name, engine_id=container_id, labels=dict(spec.labels))

    async def stop(self, sandbox: Sandbox) -> None:
        api = await self.api()
        await self._remove(api, sandbox.name)
        await self._remove_network(api, config.network_name(sandbox.name))

    async def status(self, sandbox: Sandbox) -> SandboxStatus:
        info = await self._inspect(await self.api(), sandbox.name)
        return SandboxStatus.MISSING if info is None else _status(info["State"]["Status"])

    async def list_sandboxes(self) -> list[Sandbox]:
        api = await self.api()
        rows = await self._call(
            api.containers, all=True, size=True, filters={"label": f"{LABEL_SITE}={self.site}"}
        )
        found = []
        for row in rows:
            status = _status(row["State"])
            detail = await self._exit_detail(api, row["Id"]) if status == "exited" else ""
            found.append(
                Sandbox(
                    name=row["Names"][0].lstrip("/"),
                    engine_id=row["Id"],
                    labels=row["Labels"],
                    status=status,
                    exit_detail=detail,
                    disk_bytes=row.get("SizeRw"),
                )
            )
        return found

    async def open_terminal(
        self, sandbox: Sandbox, *, tab: int, cols: int, rows: int
    ) -> DockerTerminal:
        api = await self.api()
        try:
            created = await self._call(
                api.exec_create, sandbox.name, config.terminal_command(tab),
                stdin=True, tty=True, environment={"TERM": "xterm-256color", "LANG": "C.UTF-8"},
            )  # fmt: skip
        except docker.errors.APIError as exc:
            raise SandboxError("The sandbox is not running.", detail=_explain(exc)) from exc
        exec_id = created["Id"]
        try:
            reader, writer = await open_exec_stream(
                self.base_url, api.api_version, exec_id, tls=self._stream_tls()
            )
            tty_line = await asyncio.wait_for(reader.readline(), timeout=10)
        except (HijackError, OSError, TimeoutError) as exc:
            raise HostUnavailable(
                "The terminal could not be attached.", detail=f"{sandbox.name}: {exc}"
            ) from exc
        client_tty = tty_line.decode(errors="replace").strip()

        async def resize(cols: int, rows: int) -> None:
            try:
                await self._call(api.exec_resize, exec_id, height=rows, width=cols)
            except docker.errors.APIError:
                log.debug("resize of a finished exec ignored")

        async def detach() -> None:
            if client_tty.startswith("/dev/"):
                await self._exec_output(
                    api, sandbox.name, ["tmux", "detach-client", "-t", client_tty]
                )

        await resize(cols, rows)
        # The replay is the first bytes of the stream itself (see config.terminal_command).
        return DockerTerminal(
            reader=reader, writer=writer, replay=b"", resize=resize, detach=detach
        )

    async def run_check(self, sandbox: Sandbox, script: str, *, timeout: float) -> CheckResult:
        """Run ``script`` with the platform's read-only busybox (``tools.py``), reading its
        output on the event loop; the deadline is this process's, not the sandbox's."""
        code, output, timed_out = await self._run_script(sandbox.name, script, timeout)
        text = output.decode("utf-8", errors="replace")[-CHECK_OUTPUT_LIMIT:].strip()
        return CheckResult(passed=code == 0 and not timed_out, exit_code=code, output=text,
                           timed_out=timed_out)  # fmt: skip

    async def run_script(self, sandbox: Sandbox, script: str, *, timeout: float) -> CheckResult:
        """Run ``script`` with the image's own ``/bin/sh`` and ``PATH``, as a student's shell
        would. The platform's ``timeout`` still holds the deadline: its shell only ``exec``s
        the image's (``$0``, the run's marker, stays on the command line for the kill)."""
        info = await self._inspect(await self.api(), sandbox.name)
        if info is None:
            raise SandboxError("The sandbox is not running.", detail=f"{sandbox.name} is gone")
        env = dict(item.partition("=")[::2] for item in info["Config"].get("Env") or [])
        path = env.get("PATH") or config.CHECK_PATH.removeprefix(f"{config.TOOLS_BIN}:")
        as_student = f'export PATH={shlex.quote(path)}; exec /bin/sh -c {shlex.quote(script)} "$0"'
        code, output, timed_out = await self._run_script(sandbox.name, as_student, timeout)
        text = output.decode("utf-8", errors="replace")[-CHECK_OUTPUT_LIMIT:].strip()
        return CheckResult(passed=code == 0 and not timed_out, exit_code=code, output=text,
                           timed_out=timed_out)  # fmt: skip

    async def stats(self, sandbox: Sandbox) -> SandboxStats:
        api = await self.api()
        raw = await self._call(api.stats, sandbox.name, stream=False)
        info = await self._call(api.inspect_container, sandbox.name, size=True)
        memory = raw.get("memory_stats", {})
        cpu, pre = raw.get("cpu_stats", {}), raw.get("precpu_stats", {})
        cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get(
            "total_usage", 0
        )
        system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
        cpus = cpu.get("online_cpus", 1) or 1
        percent = cpu_delta / system_delta * cpus * 100 if system_delta > 0 else 0.0
        return SandboxStats(
            memory_bytes=int(memory.get("usage", 0)),
            memory_limit_bytes=int(memory.get("limit", 0)),
            cpu_percent=round(percent, 1),
            disk_bytes=info.get("SizeRw"),
        )

    async def close(self) -> None:
        if self._api is not None:
            self._api.close()
        for pool in (self.interactive, self.checks, self.slow):
            pool.shutdown()

    async def host_facts(self) -> dict[str, Any]:
        """What admins see about this engine: version, storage, runtimes, capacity."""
        info = await self._call((await self.api()).info)
        self._runtimes = set(info.get("Runtimes", {}))
        return {
            "engine": "docker",
            "version": info.get("ServerVersion"),
            "storage_driver": info.get("Driver"),
            "disk_quota": "hard" if self._hard_quota else "measured",
            "cgroup_version": info.get("CgroupVersion"),
            "runtimes": sorted(self._runtimes),
            "cpus": info.get("NCPU"),
            "memory_bytes": info.get("MemTotal"),
            "containers_running": info.get("ContainersRunning"),
        }

    async def runtimes(self) -> set[str]:
        """OCI runtimes this engine offers (runc, and runsc or kata where installed)."""
        if self._runtimes is None:
            info = await self._call((await self.api()).info)
            self._runtimes = set(info.get("Runtimes", {}))
        return self._runtimes

    # -- images -----------------------------------------------------------------------------

    async def image_exists(self, ref: str) -> bool:
        api = await self.api()
        try:
            await self._call(api.inspect_image, ref)
        except docker.errors.ImageNotFound:
            return False
        return True

    async def _ensure_image(self, spec: SandboxSpec, report: ProgressCallback) -> None:
        """The image exists, or is built from ``spec.dockerfile`` once: fifty students
        starting the same lab at once wait for one build."""
        if not spec.dockerfile:
            if not await self.image_exists(spec.image):
                raise SandboxError(
                    "This lab's image is not available on the lab server.",
                    detail=f"image {spec.image} is not built",
                )
            return
        lock = self._image_builds.setdefault(spec.image, asyncio.Lock())
        async with lock:
            if not await self.image_exists(spec.image):
                report(Progress(5, "building the lab image"))
                await self._build_image(spec.image, spec.dockerfile)

    async def _build_image(self, ref: str, dockerfile: str) -> None:
        api = await self.api()

        def build() -> None:
            stream = api.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True,
                               forcerm=True, pull=False, decode=True)  # fmt: skip
            for chunk in stream:
                if "error" in chunk:
                    raise SandboxError(
                        "This lab's image could not be built.", detail=chunk["error"].strip()
                    )

        await self._call(build, budget=self.slow)

    # -- steps of start/stop ----------------------------------------------------------------

    async def _inspect(self, api: docker.APIClient, name: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = await self._call(api.inspect_container, name)
        except docker.errors.NotFound:
            return None
        return info

    async def _exit_detail(self, api: docker.APIClient, container_id: str) -> str:
        info = await self._inspect(api, container_id)
        if info is None:
            return ""
        state = info["State"]
        if state.get("OOMKilled"):
            return "it ran out of memory"
        return f"its main process ended with code {state.get('ExitCode')}"

    async def _ensure_network(self, api: docker.APIClient, spec: SandboxSpec) -> str | None:
        if spec.network != "isolated":
            return None
        if self.isolate_host:
            await self._call(self._firewall_lab_bridges, budget=self.slow)
        name = config.network_name(spec.name)
        try:
            await self._call(api.create_network, **config.network_config(spec), budget=self.slow)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: it exists from an earlier try; reuse it
                raise SandboxError(
                    "The lab's network could not be created.", detail=_explain(exc)
                ) from exc
        return name

    def _firewall_lab_bridges(self) -> None:
        """Packets from a lab bridge reach the internet only: none addressed to the host
        itself (the web site, the engines), none to private, link-local or other lab
        networks. Runs once per process; only meaningful for an engine on this machine."""
        if self._firewalled or not self.base_url.startswith("unix:"):
            return
        rules = [["INPUT", "-i", "lab+", "-j", "DROP"]]
        rules += [
            ["DOCKER-USER", "-i", "lab+", "-d", net, "-j", "DROP"] for net in BLOCKED_DESTINATIONS
        ]
        for rule in rules:
            if subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode != 0:
                subprocess.run(["iptables", "-I", *rule], check=True, capture_output=True)
        self._firewalled = True

    async def _create(self, api: docker.APIClient, spec: SandboxSpec, network: str | None) -> str:
        if spec.runtime and spec.runtime not in await self.runtimes():
            log.warning("runtime %s is not installed here; %s uses runc", spec.runtime, spec.name)
            spec = dataclasses.replace(spec, runtime=None)
        tools = await self._tools_dir()
        while True:
            with_quota = self._hard_quota is not False
            kwargs = config.container_config(
                spec,
                network=network,
                tools_dir=tools,
                hard_disk_quota=with_quota,
            )
            host_config = api.create_host_config(**kwargs.pop("host_config"))
            try:
                created = await self._call(
                    api.create_container, host_config=host_config, **kwargs, budget=self.slow
                )
            except docker.errors.APIError as exc:
                # Fifty starts at once all try the quota before the first one learns there is
                # none: each that tried it tries again without (the flag may be set already).
                if (
                    with_quota
                    and self._hard_quota is not True
                    and "storage" in _explain(exc).lower()
                ):
                    log.info("storage driver has no size quota here; disk use is measured")
                    self._hard_quota = False
                    continue
                raise SandboxError(
                    "The lab environment could not be created.", detail=_explain(exc)
                ) from exc
            if self._hard_quota is None:
                self._hard_quota = True
            return str(created["Id"])

    async def _tools_dir(self) -> str:
        if self._tools_ready is None:
            self._tools_ready = await self._call(ensure_tools, *self._tools, budget=self.slow)
        return self._tools_ready

    async def _run_setup(self, api: docker.APIClient, container_id: str, script: str) -> None:
        code, output, timed_out = await self._run_script(container_id, script, SETUP_TIMEOUT)
        if code != 0 or timed_out:
            raise SandboxError(
                "The lab's setup did not complete.",
                detail=f"exit {code}: {output.decode(errors='replace')[-500:]}",
            )

    async def _run_script(
        self, name: str, script: str, timeout: float
    ) -> tuple[int | None, bytes, bool]:
        """Run ``script`` with the platform's tools; returns (exit code, output, timed out)."""
        api = await self.api()
        marker = f"labcheck-{uuid.uuid4().hex[:12]}"
        try:
            created = await self._call(
                api.exec_create, name, config.script_command(script, timeout, marker),
                stdout=True, stderr=True, workdir="/root", budget=self.checks,
                environment={"LANG": "C.UTF-8", "HOME": "/root", "PATH": config.CHECK_PATH},
            )  # fmt: skip
        except docker.errors.APIError as exc:
            raise SandboxError("The sandbox is not running.", detail=_explain(exc)) from exc
        began = time.monotonic()
        try:
            reader, writer = await open_exec_stream(
                self.base_url, api.api_version, created["Id"], tty=False, tls=self._stream_tls()
            )
        except (HijackError, OSError) as exc:
            raise HostUnavailable("The check could not be started.", detail=str(exc)) from exc
        try:
            output = await asyncio.wait_for(read_exec_output(reader), timeout + 1)
        except TimeoutError:
            log.warning("script in %s held its deadline up; killing it", name)
            await self._exec_output(
                api, name, config.kill_command(marker), env={"PATH": config.CHECK_PATH}
            )
            return None, b"", True
        finally:
            writer.close()
        info = await self._call(api.exec_inspect, created["Id"], budget=self.checks)
        code = info.get("ExitCode")
        timed_out = code == config.TIMED_OUT and time.monotonic() - began >= timeout - 0.5
        return code, output, timed_out

    async def _is_ready(self, api: docker.APIClient, spec: SandboxSpec) -> bool:
        """Did a start finish here (setup included)? Only then may a retried start adopt it.
        Without a setup script a running container is all there is to a start."""
        if not spec.setup_script:
            return True
        output = await self._exec_output(api, spec.name, config.is_ready_command())
        return output.strip() == b"ready"

    async def _exec_output(
        self, api: docker.APIClient, name: str, cmd: list[str], env: dict | None = None
    ) -> bytes:
        try:
            created = await self._call(
                api.exec_create, name, cmd, stdout=True, stderr=False, environment=env
            )
            return bytes(await self._call(api.exec_start, created["Id"]))
        except docker.errors.APIError:
            return b""

    async def _remove(self, api: docker.APIClient, name: str) -> None:
        try:
            await self._call(api.remove_container, name, force=True, v=True, budget=self.slow)
        except docker.errors.NotFound:
            log.info("container %s already gone", name)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise SandboxError(
                    "The sandbox could not be removed.", detail=_explain(exc)
                ) from exc
            log.info("container %s already being removed", name)

    async def _remove_network(self, api: docker.APIClient, name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            await self._call(api.remove_network, name, budget=self.slow)

    @staticmethod
    def _sandbox(info: dict[str, Any]) -> Sandbox:
        return Sandbox(
            name=info["Name"].lstrip("/"), engine_id=info["Id"], labels=info["Config"]["Labels"]
        )


def _status(state: str) -> SandboxStatus:
    """A container's state as the contract names it ("created" is a start under way)."""
    if state in ("running", "paused"):
        return SandboxStatus.RUNNING
    if state in ("created", "restarting"):
        return SandboxStatus.STARTING
    return SandboxStatus.EXITED


def _explain(exc: docker.errors.APIError) -> str:
    message = exc.explanation or str(exc)
    return message if isinstance(message, str) else str(message)


class _EngineClient(docker.APIClient):
    """An engine's API client that takes nothing from the process's environment: requests
    lets REQUESTS_CA_BUNDLE replace the CA a TLS engine is verified with (psf/requests#3829,
    set on many servers), and HTTP proxies are never the way to a Docker Engine."""

    @property
    def trust_env(self) -> bool:
        return False

    @trust_env.setter
    def trust_env(self, value: bool) -> None:
        pass
