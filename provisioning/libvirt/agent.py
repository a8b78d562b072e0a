"""Running commands in a guest through qemu-guest-agent, never through the student's console.

Every template runs Debian's ``qemu-guest-agent`` on the virtio-serial port
``org.qemu.guest_agent.0`` (the tiny template copies the binary and its
libraries into its initramfs). libvirt relays the agent's JSON protocol with
``libvirt_qemu.qemuAgentCommand``, a blocking call that goes through the
backend's executor.

A check runs as ``setsid sh -c SCRIPT`` with stderr merged into stdout, so it
leads its own process group and its output reads as it would in a terminal.
Past its timeout the whole group is killed with another ``guest-exec``
(``kill -KILL -- -PID``), which also ends what the script started in the
background; the result then says ``timed_out``. The timeout is kept on the
host's clock: whatever answers as the guest's agent, a result (``timed_out``
if need be) comes within ``timeout + KILL_GRACE`` seconds. Everything else
about a check's result is the guest's word: see ``docs/vm-checks.md``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import libvirt
import libvirt_qemu

from provisioning.base import CheckResult, SandboxError

log = logging.getLogger(__name__)

#: The environment of every command run in a guest.
GUEST_ENV = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "LANG=C.UTF-8",
    "TERM=dumb",
)
#: Output kept from a check: the start is what explains a failure.
MAX_OUTPUT = 64 * 1024
#: Seconds one agent command may take before libvirt gives up on it.
COMMAND_TIMEOUT = 10
#: Seconds past a check's timeout for killing it and collecting the output it left.
KILL_GRACE = 5.0

Call = Callable[..., Awaitable[Any]]


class AgentUnavailable(SandboxError):
    """The guest agent does not answer (guest still booting, or hung)."""


class GuestAgent:
    """qemu-guest-agent commands for one backend; ``call`` runs blocking code in its executor."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._sizes: dict[str, tuple[int, int]] = {}
        self._resizing: dict[str, asyncio.Future[None]] = {}

    async def command(self, dom: libvirt.virDomain, execute: str, **arguments: Any) -> Any:
        payload: dict[str, Any] = {"execute": execute}
        if arguments:
            payload["arguments"] = arguments
        try:
            reply = await self._call(
                libvirt_qemu.qemuAgentCommand, dom, json.dumps(payload), COMMAND_TIMEOUT, 0
            )
        except libvirt.libvirtError as exc:
            raise AgentUnavailable(
                "The VM's agent does not answer.", detail=str(exc).strip()[:2000]
            ) from exc
        return json.loads(reply).get("return")

    async def ping(self, dom: libvirt.virDomain) -> bool:
        try:
            await self.command(dom, "guest-ping")
        except AgentUnavailable:
            return False
        return True

    async def wait(self, dom: libvirt.virDomain, within: float) -> bool:
        """Ping until the agent answers; False after ``within`` seconds."""
        deadline = time.monotonic() + within
        while not await self.ping(dom):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.5)
        return True

    async def spawn(self, dom: libvirt.virDomain, argv: list[str]) -> int:
        reply = await self.command(
            dom, "guest-exec", path=argv[0], arg=argv[1:], env=list(GUEST_ENV),
            **{"capture-output": True},
        )  # fmt: skip
        return int(reply["pid"])

    async def run_script(self, dom: libvirt.virDomain, script: str, limit: float) -> CheckResult:
        """Run ``script`` with ``sh``; past ``limit`` seconds (on the host's clock, from the
        call) kill its process group and report ``timed_out``."""
        # stderr joins stdout in order; the script keeps its own line numbers in errors.
        argv = ["setsid", "sh", "-c", 'exec sh -c "$1" 2>&1', "sh", script]
        spawning = asyncio.ensure_future(self.spawn(dom, argv))
        spawning.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            async with asyncio.timeout(limit):
                pid = await asyncio.shield(spawning)
                return _result(await self._wait_exit(dom, pid))
        except TimeoutError:
            pass
        log.info("check ran past %.0f s: killing its process group", limit)
        output = await self._kill(dom, spawning)
        return CheckResult(passed=False, exit_code=None, output=output, timed_out=True)

    async def _wait_exit(self, dom: libvirt.virDomain, pid: int) -> dict[str, Any]:
        delay = 0.05
        while True:
            status: dict[str, Any] = await self.command(dom, "guest-exec-status", pid=pid)
            if status.get("exited"):
                return status
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _kill(self, dom: libvirt.virDomain, spawning: asyncio.Future[int]) -> str:
        """Kill a check that ran too long; the output it left, or "" if the guest does not
        answer within KILL_GRACE seconds (the result is ``timed_out`` either way)."""
        try:
            async with asyncio.timeout(KILL_GRACE):
                pid = await spawning
                await self.spawn(dom, ["kill", "-KILL", "--", f"-{pid}"])
                return _output(await self._wait_exit(dom, pid))
        except (TimeoutError, SandboxError) as exc:
            log.info("timed-out check not killed or its output not read: %r", exc)
            return ""

    async def resize_console(self, dom: libvirt.virDomain, name: str, cols: int, rows: int) -> None:
        """Set the serial console's size with ``stty`` (the tty then sends SIGWINCH to the
        program in front); never typed into the console. Resizes that arrive while one is
        being applied collapse into one more; each call returns once its size (or a newer
        one) is applied."""
        self._sizes[name] = (max(1, min(cols, 1000)), max(1, min(rows, 500)))
        running = self._resizing.get(name)
        if running is not None:
            await asyncio.shield(running)
            return
        done = self._resizing[name] = asyncio.get_running_loop().create_future()
        try:
            applied = None
            while self._sizes.get(name, applied) != applied:
                applied = self._sizes[name]
                script = f"stty -F /dev/ttyS0 rows {applied[1]} cols {applied[0]}"
                try:
                    await self.run_script(dom, script, 10)
                except SandboxError as exc:
                    log.info("resize of %s's console skipped: %s", name, exc)
        finally:
            del self._resizing[name]
            done.set_result(None)

    def forget(self, name: str) -> None:
        self._sizes.pop(name, None)


def _result(status: dict[str, Any]) -> CheckResult:
    # A shell reports death by signal N as 128 + N; so does this.
    code = int(status["exitcode"]) if "exitcode" in status else 128 + int(status.get("signal", 0))
    return CheckResult(passed=code == 0, exit_code=code, output=_output(status))


def _output(status: dict[str, Any]) -> str:
    data = b"".join(base64.b64decode(status.get(key, "")) for key in ("out-data", "err-data"))
    text = data[:MAX_OUTPUT].decode("utf-8", errors="replace")
    if len(data) > MAX_OUTPUT or status.get("out-truncated"):
        text += "\n[output truncated]"
    return text
