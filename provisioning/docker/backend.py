"""DockerBackend: lab containers on a Docker Engine, through the docker SDK.

Read ``start`` top to bottom: it is the whole life of a sandbox's birth in small steps.
Every blocking SDK call goes through ``self._calls`` (one bounded thread pool); terminal
streams are read by the event loop itself (see ``stream.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import subprocess
from collections.abc import Callable
from typing import Any, TypeVar

import docker
import docker.errors
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
from provisioning.docker.stream import HijackError, open_exec_stream
from provisioning.docker.terminal import DockerTerminal
from provisioning.executor import BlockingCalls

log = logging.getLogger(__name__)
T = TypeVar("T")
CHECK_OUTPUT_LIMIT = 4000


class DockerBackend:
    kind = "docker"

    def __init__(
        self,
        *,
        site: str,
        base_url: str = "unix:///var/run/docker.sock",
        max_workers: int = 8,
        isolate_host: bool = True,
    ) -> None:
        self.site = site
        self.base_url = base_url
        self.isolate_host = isolate_host
        self._calls = BlockingCalls("docker", max_workers)
        self._api: docker.APIClient | None = None
        self._firewalled = False
        self._runtimes: set[str] | None = None

    # -- plumbing ---------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one SDK call off the loop, turning "engine unreachable" into HostUnavailable."""
        try:
            return await self._calls.run(fn, *args, **kwargs)
        except (requests.exceptions.ConnectionError, FileNotFoundError) as exc:
            raise HostUnavailable(f"Docker Engine at {self.base_url} does not answer") from exc

    async def api(self) -> docker.APIClient:
        if self._api is None:
            # version="auto" asks the engine at construction, so build it off the loop.
            self._api = await self._call(
                docker.APIClient, base_url=self.base_url, version="auto", timeout=120
            )
        return self._api

    # -- the contract -----------------------------------------------------------------------

    async def start(
        self, spec: SandboxSpec, on_progress: ProgressCallback | None = None
    ) -> Sandbox:
        report = on_progress or (lambda progress: None)
        api = await self.api()
        report(Progress(10, "checking the image"))
        await self._require_image(spec.image)
        existing = await self._inspect(api, spec.name)
        if existing and existing["State"]["Running"]:
            log.info("sandbox %s already running, adopting it", spec.name)
            return self._sandbox(existing)
        if existing:
            await self._remove(api, spec.name)
        report(Progress(30, "preparing the network"))
        network = await self._ensure_network(api, spec)
        report(Progress(50, "creating the container"))
        container_id = await self._create(api, spec, network)
        report(Progress(70, "starting the container"))
        try:
            await self._call(api.start, container_id)
            if spec.setup_script:
                report(Progress(85, "running the lab's setup"))
                await self._run_setup(api, container_id, spec.setup_script)
        except Exception:
            await self._remove(api, spec.name)
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
        if info is None:
            return SandboxStatus.MISSING
        state = info["State"]
        if state["Running"]:
            return SandboxStatus.RUNNING
        if state["Status"] == "created":
            return SandboxStatus.STARTING
        return SandboxStatus.EXITED

    async def list_sandboxes(self) -> list[Sandbox]:
        api = await self.api()
        rows = await self._call(
            api.containers, all=True, filters={"label": f"{LABEL_SITE}={self.site}"}
        )
        return [
            Sandbox(name=row["Names"][0].lstrip("/"), engine_id=row["Id"], labels=row["Labels"])
            for row in rows
        ]

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
            raise SandboxError(_explain(exc)) from exc
        exec_id = created["Id"]
        try:
            reader, writer = await open_exec_stream(self.base_url, api.api_version, exec_id)
            tty_line = await asyncio.wait_for(reader.readline(), timeout=10)
        except (HijackError, OSError, TimeoutError) as exc:
            raise HostUnavailable(f"could not attach to {sandbox.name}: {exc}") from exc
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
        api = await self.api()
        try:
            created = await self._call(
                api.exec_create, sandbox.name, config.check_command(script, timeout),
                stdout=True, stderr=True, environment={"LANG": "C.UTF-8"}, workdir="/root",
            )  # fmt: skip
            output = await self._call(api.exec_start, created["Id"])
            exit_code = (await self._call(api.exec_inspect, created["Id"]))["ExitCode"]
        except docker.errors.NotFound as exc:
            raise SandboxError("the sandbox is not running") from exc
        text = output.decode("utf-8", errors="replace")[-CHECK_OUTPUT_LIMIT:].strip()
        timed_out = exit_code == config.TIMED_OUT
        return CheckResult(passed=exit_code == 0, exit_code=exit_code, output=text,
                           timed_out=timed_out)  # fmt: skip

    async def stats(self, sandbox: Sandbox) -> SandboxStats:
        api = await self.api()
        raw = await self._call(api.stats, sandbox.name, stream=False)
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
        )

    async def close(self) -> None:
        if self._api is not None:
            self._api.close()
        self._calls.shutdown()

    async def host_facts(self) -> dict[str, Any]:
        """What admins see about this engine: version, storage, runtimes, capacity."""
        info = await self._call((await self.api()).info)
        self._runtimes = set(info.get("Runtimes", {}))
        return {
            "engine": "docker",
            "version": info.get("ServerVersion"),
            "storage_driver": info.get("Driver"),
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

    async def build_image(self, ref: str, dockerfile: str) -> None:
        """Build a lab's own image from its Dockerfile (``FROM`` a local image)."""
        api = await self.api()

        def build() -> None:
            stream = api.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True,
                               forcerm=True, pull=False, decode=True)  # fmt: skip
            for chunk in stream:
                if "error" in chunk:
                    raise SandboxError(f"building the lab image failed: {chunk['error'].strip()}")

        await self._call(build)

    # -- steps of start/stop ----------------------------------------------------------------

    async def _require_image(self, ref: str) -> None:
        if not await self.image_exists(ref):
            raise SandboxError(f"the lab image {ref} is not built on this host")

    async def _inspect(self, api: docker.APIClient, name: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = await self._call(api.inspect_container, name)
        except docker.errors.NotFound:
            return None
        return info

    async def _ensure_network(self, api: docker.APIClient, spec: SandboxSpec) -> str | None:
        if spec.network != "isolated":
            return None
        if self.isolate_host:
            await self._call(self._firewall_lab_bridges)
        name = config.network_name(spec.name)
        try:
            await self._call(api.create_network, **config.network_config(spec))
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: it exists from an earlier try; reuse it
                raise SandboxError(_explain(exc)) from exc
        return name

    def _firewall_lab_bridges(self) -> None:
        """Drop every packet from a lab bridge addressed to the host itself, so a student
        reaches no service of the host (the web site, the engines). Runs once per process;
        only meaningful for an engine on this machine."""
        if self._firewalled or not self.base_url.startswith("unix:"):
            return
        rule = ["INPUT", "-i", "lab+", "-j", "DROP"]
        if subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode != 0:
            subprocess.run(["iptables", "-I", *rule], check=True, capture_output=True)
        self._firewalled = True

    async def _create(self, api: docker.APIClient, spec: SandboxSpec, network: str | None) -> str:
        if spec.runtime and spec.runtime not in await self.runtimes():
            log.warning("runtime %s is not installed here; %s uses runc", spec.runtime, spec.name)
            spec = dataclasses.replace(spec, runtime=None)
        kwargs = config.container_config(spec, network=network)
        host_config = api.create_host_config(**kwargs.pop("host_config"))
        try:
            created = await self._call(api.create_container, host_config=host_config, **kwargs)
        except docker.errors.APIError as exc:
            raise SandboxError(_explain(exc)) from exc
        return str(created["Id"])

    async def _run_setup(self, api: docker.APIClient, container_id: str, script: str) -> None:
        created = await self._call(
            api.exec_create, container_id, config.check_command(script, 120), workdir="/root"
        )
        output = await self._call(api.exec_start, created["Id"])
        code = (await self._call(api.exec_inspect, created["Id"]))["ExitCode"]
        if code != 0:
            tail = output.decode(errors="replace")[-500:]
            raise SandboxError(f"the lab's setup script failed ({code}): {tail}")

    async def _exec_output(self, api: docker.APIClient, name: str, cmd: list[str]) -> bytes:
        try:
            created = await self._call(api.exec_create, name, cmd, stdout=True, stderr=False)
            return bytes(await self._call(api.exec_start, created["Id"]))
        except docker.errors.APIError:
            return b""

    async def _remove(self, api: docker.APIClient, name: str) -> None:
        try:
            await self._call(api.remove_container, name, force=True, v=True)
        except docker.errors.NotFound:
            log.info("container %s already gone", name)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
            log.info("container %s already being removed", name)

    async def _remove_network(self, api: docker.APIClient, name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            await self._call(api.remove_network, name)

    @staticmethod
    def _sandbox(info: dict[str, Any]) -> Sandbox:
        return Sandbox(
            name=info["Name"].lstrip("/"), engine_id=info["Id"], labels=info["Config"]["Labels"]
        )


def _explain(exc: docker.errors.APIError) -> str:
    message = exc.explanation or str(exc)
    return message if isinstance(message, str) else str(message)
