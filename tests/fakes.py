"""A backend whose faults a test sets on demand: for faults a real engine cannot be made to
show when asked (a start that hangs, raises, or is stopped half-way). Tests of the
real engines live under tests/docker and tests/vm; these test the service layer alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from provisioning.base import (
    CheckResult,
    HostUnavailable,
    Sandbox,
    SandboxSpec,
    SandboxStats,
    SandboxStatus,
)


@dataclass
class FakeBackend:
    """Sandboxes as a dict. Set ``start_error``, ``start_gate``, ``unreachable`` or the
    listed ``status``/``disk_bytes`` of a sandbox to make the next call misbehave."""

    site: str
    kind: str = "fake"
    boxes: dict[str, Sandbox] = field(default_factory=dict)
    start_error: BaseException | None = None
    #: A start waits for this event (a slow start), if set.
    start_gate: asyncio.Event | None = None
    unreachable: bool = False
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def _reachable(self) -> None:
        if self.unreachable:
            raise HostUnavailable("The lab servers cannot be reached.", detail="fake is down")

    async def start(self, spec: SandboxSpec, on_progress=None, *, timeout: float) -> Sandbox:
        self._reachable()
        self.started.append(spec.name)
        try:
            if self.start_gate is not None:
                await self.start_gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(spec.name)
            raise
        if self.start_error is not None:
            raise self.start_error
        box = Sandbox(name=spec.name, engine_id=f"id-{spec.name}", labels=dict(spec.labels),
                      status=SandboxStatus.RUNNING)  # fmt: skip
        self.boxes[spec.name] = box
        return box

    async def stop(self, sandbox: Sandbox) -> None:
        self._reachable()
        self.stopped.append(sandbox.name)
        self.boxes.pop(sandbox.name, None)

    async def status(self, sandbox: Sandbox) -> SandboxStatus:
        self._reachable()
        box = self.boxes.get(sandbox.name)
        return box.status if box and box.status else SandboxStatus.MISSING

    async def list_sandboxes(self) -> list[Sandbox]:
        self._reachable()
        return list(self.boxes.values())

    def set_listed(self, name: str, **changes) -> None:
        from dataclasses import replace

        self.boxes[name] = replace(self.boxes[name], **changes)

    async def open_terminal(self, sandbox: Sandbox, *, tab: int, cols: int, rows: int):
        raise NotImplementedError

    async def run_check(self, sandbox: Sandbox, script: str, *, timeout: float) -> CheckResult:
        self._reachable()
        return CheckResult(passed=True, exit_code=0, output="ok")

    async def run_script(self, sandbox: Sandbox, script: str, *, timeout: float) -> CheckResult:
        self._reachable()
        return CheckResult(passed=True, exit_code=0, output="")

    async def stats(self, sandbox: Sandbox) -> SandboxStats:
        return SandboxStats(memory_bytes=0, memory_limit_bytes=0, cpu_percent=0.0)

    async def host_facts(self) -> dict:
        return {"engine": "fake"}

    async def close(self) -> None:
        pass
