"""The slow part of a start: progress for the waiting page, and the wait for a usable guest.

A guest is usable once its console shows a shell prompt (skipped when the
console's output since boot is not known, e.g. adopted after a restart with
no readable log, or when a student's terminal took the console over), its
agent answers, the template's ``ready_check`` passes (Docker up in
debian-docker) and the lab's setup script has run.

The template's ``boot_timeout`` bounds these waits; the caller's overall
``timeout`` is enforced around the whole start by the backend.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import libvirt

from provisioning.base import Progress, ProgressCallback, SandboxError, SandboxSpec
from provisioning.libvirt.agent import GuestAgent
from provisioning.libvirt.console import TAKEN, ConsoleHub
from provisioning.libvirt.templates import VMTemplate

log = logging.getLogger(__name__)
T = TypeVar("T")
Call = Callable[..., Awaitable[Any]]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
#: Seconds the lab's setup script may run.
SETUP_TIMEOUT = 300.0


class Reporter:
    """Progress for the waiting page (a failing callback never fails a start), and the
    seconds from the start to each phase, for benchmarks."""

    def __init__(self, name: str, callback: ProgressCallback | None) -> None:
        self._name = name
        self._callback = callback
        self._started = time.monotonic()
        self.marks: dict[str, float] = {}
        #: The last step reported, for the log when a start fails.
        self.last = "starting"

    def mark(self, phase: str) -> None:
        self.marks[phase] = round(time.monotonic() - self._started, 2)

    def __call__(self, percent: int, message: str) -> None:
        log.debug("%s: %d%% %s", self._name, percent, message)
        self.last = message
        if self._callback is not None:
            try:
                self._callback(Progress(min(100, max(0, percent)), message))
            except Exception:
                log.exception("progress callback failed")


class BuildSteps:
    """The blocking steps that make things for a sandbox (overlay, network, domain).

    A thread cannot be interrupted, so a step runs to its end even when the start
    that asked for it is cancelled or times out; ``settle(name)`` waits for it, so
    that a removal which follows removes what the step made instead of racing it.
    """

    def __init__(self, call: Call, *, wait: float = 120.0) -> None:
        self._call = call
        self._wait = wait
        self._running: dict[str, asyncio.Future[Any]] = {}

    async def run(self, name: str, func: Callable[..., T], *args: Any) -> T:
        step: asyncio.Future[T] = asyncio.ensure_future(self._call(func, *args))
        self._running[name] = step
        step.add_done_callback(lambda done: self._done(name, done))
        return await asyncio.shield(step)

    def _done(self, name: str, step: asyncio.Future[Any]) -> None:
        if self._running.get(name) is step:
            del self._running[name]
        retrieve(step)

    async def settle(self, name: str) -> None:
        step = self._running.get(name)
        if step is not None:
            log.info("%s: waiting for a step of its start to end before removing it", name)
            await asyncio.wait({step}, timeout=self._wait)


def retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a background future's failure as seen (whoever awaited it was cancelled)."""
    if not future.cancelled() and future.exception() is not None:
        log.debug("background step failed: %s", future.exception())


def validate_spec(spec: SandboxSpec, template: VMTemplate) -> None:
    if not _NAME.fullmatch(spec.name):
        raise SandboxError(f"'{spec.name}' cannot name a VM.")
    if not _HOSTNAME.fullmatch(spec.hostname):
        raise SandboxError(f"'{spec.hostname}' is not a valid host name.")
    if spec.network not in ("none", "isolated"):
        raise SandboxError(f"Unknown network mode '{spec.network}' (none or isolated).")
    if spec.resources.memory_mib < template.min_memory_mib:
        raise SandboxError(
            f"The VM template '{template.name}' needs at least {template.min_memory_mib} MiB "
            f"of memory; the lab asks for {spec.resources.memory_mib} MiB."
        )


async def wait_usable(
    hub: ConsoleHub,
    agent: GuestAgent,
    dom: libvirt.virDomain,
    spec: SandboxSpec,
    template: VMTemplate,
    report: Reporter,
) -> None:
    """Return once the guest is usable; SandboxError if it is not within the boot timeout."""
    started = time.monotonic()
    deadline = started + template.boot_timeout
    if hub.complete:
        while not await hub.wait_until(template.shows_prompt, 2.0):
            if hub.closed and hub.ended_reason == TAKEN:
                log.info("%s: a terminal took the console; waiting for the agent", spec.name)
                break
            if hub.closed:
                raise SandboxError("The VM stopped while it was booting.")
            elapsed = time.monotonic() - started
            if time.monotonic() > deadline:
                raise SandboxError(f"The VM did not finish booting within {elapsed:.0f} seconds.")
            percent = 10 + int(70 * elapsed / template.boot_timeout)
            report(percent, f"booting the VM ({elapsed:.0f} s)")
        report.mark("prompt")
    report(82, "waiting for the VM's agent")
    if not await agent.wait(dom, max(1.0, deadline - time.monotonic())):
        raise SandboxError("The VM's agent did not answer in time.")
    report.mark("agent")
    while template.ready_check:
        report(88, f"waiting for services in the VM ({time.monotonic() - started:.0f} s)")
        if (await agent.run_script(dom, template.ready_check, 30)).passed:
            break
        if time.monotonic() > deadline:
            raise SandboxError("The VM's services did not come up in time.")
        await asyncio.sleep(1)
    report.mark("services")
    if spec.setup_script:
        report(95, "setting up the lab")
        result = await agent.run_script(dom, spec.setup_script, SETUP_TIMEOUT)
        if not result.passed:
            why = "timed out" if result.timed_out else f"exit code {result.exit_code}"
            raise SandboxError(
                "The lab's setup script failed.", detail=f"{why}:\n{result.output[-2000:]}"
            )
