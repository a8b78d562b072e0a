"""The contract every sandbox backend fulfils.

A *backend* runs sandboxes (a Docker container, a libvirt guest) for one engine
or host. The Django side keeps one backend object per engine and calls it from
the reconciler and from the terminal consumer; nothing in this package imports
Django, so a backend can be exercised from a plain script or a benchmark.

What a backend implements (every method is a coroutine; blocking SDK calls go
through the backend's own bounded executor, never on the event loop):

``start(spec) -> Sandbox``
    Create and start the sandbox described by ``spec``. Idempotent: if a
    sandbox with ``spec.name`` already exists and runs, return it; if it exists
    but is stopped, remove it and create it anew. Raises ``SandboxError`` with a
    message a student can read when the engine refuses (image missing, out of
    memory). May take seconds; progress is reported through ``on_progress``.

``stop(sandbox)``
    Stop and remove the sandbox and everything it owns (overlay disks, networks,
    volumes). Idempotent: a sandbox that is already gone is not an error (the
    engine's "not found" and "already being removed" are logged and treated as
    done).

``status(sandbox) -> SandboxStatus``
    What the engine says *now*, never a cached answer:

    - before ``start`` was called, or after ``stop``: ``MISSING``;
    - during a slow start (image being built, guest still booting): ``STARTING``;
    - running: ``RUNNING``;
    - exited by itself (the student ran ``halt``, the OOM killer took PID 1):
      ``EXITED``;
    - the host does not answer (engine down, connection refused): raises
      ``HostUnavailable``. The caller decides whether that means "lost": a
      single failed probe must not destroy a student's work.

``list_sandboxes() -> list[Sandbox]``
    Every sandbox on this engine that carries ``site`` in its labels. This is
    how the reconciler adopts sandboxes after a restart and finds orphans: the
    labels (``Sandbox.labels``) are the only state a backend keeps.

``open_terminal(sandbox, *, tab, cols, rows) -> Terminal``
    Attach to terminal ``tab`` of the sandbox. The shell lives *inside* the
    sandbox (tmux in a container, the serial console of a guest), so calling
    this again after a disconnect reaches the same shell; the returned
    ``Terminal.replay`` holds recent output to show first.

``run_check(sandbox, script, *, timeout) -> CheckResult``
    Run ``script`` (a shell script's text) inside the sandbox, outside the
    student's terminal, and report its exit code and output. A script that
    runs past ``timeout`` seconds is killed and reported as failed.

``stats(sandbox) -> SandboxStats``
    Current memory and CPU use, for admins and idle detection.

``host_facts() -> dict``
    What admins are shown about the engine (version, capacity, and for libvirt whether
    guests run under KVM or QEMU TCG). Called by the reconciler after each pass.

A new engine is a new module with a class that implements this protocol; see
"How to add a backend" in the README.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

#: Label keys every sandbox carries. The reconciler trusts nothing else.
LABEL_SITE = "labsite.site"
LABEL_SESSION = "labsite.session"
LABEL_OWNER = "labsite.owner"
LABEL_LAB = "labsite.lab"


class SandboxError(Exception):
    """The engine refused to do what was asked. ``str()`` is fit for a student."""


class HostUnavailable(SandboxError):
    """The engine or its host does not answer. Nothing is known about the sandbox."""


class SandboxStatus(enum.StrEnum):
    MISSING = "missing"
    STARTING = "starting"
    RUNNING = "running"
    EXITED = "exited"


@dataclass(frozen=True)
class Resources:
    """Limits applied to one sandbox. Memory in MiB; ``cpus`` may be fractional."""

    cpus: float = 1.0
    memory_mib: int = 512
    pids: int = 256
    disk_mib: int = 1024


@dataclass(frozen=True)
class SandboxSpec:
    """Everything a backend needs to create one sandbox.

    ``name`` is deterministic (derived from the site and session) so that a
    retried start finds the sandbox it already made.
    """

    name: str
    image: str
    labels: Mapping[str, str]
    resources: Resources = field(default_factory=Resources)
    #: Linux capabilities granted on top of none (containers only).
    capabilities: tuple[str, ...] = ()
    #: "none" (no network at all) or "isolated" (outbound only, no neighbours).
    network: str = "none"
    #: Run once inside the sandbox after it starts (lab setup).
    setup_script: str = ""
    #: Optional stronger OCI runtime, e.g. "runsc"; ignored where not installed.
    runtime: str | None = None
    hostname: str = "lab"


@dataclass(frozen=True)
class Sandbox:
    """A sandbox as the engine knows it: its id on the engine and its labels."""

    name: str
    engine_id: str
    labels: Mapping[str, str]

    @property
    def session_id(self) -> str | None:
        return self.labels.get(LABEL_SESSION)


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    exit_code: int | None
    output: str
    timed_out: bool = False


@dataclass(frozen=True)
class SandboxStats:
    memory_bytes: int
    memory_limit_bytes: int
    cpu_percent: float


@dataclass(frozen=True)
class Progress:
    """One step of a slow start, for the waiting page. ``percent`` is 0-100."""

    percent: int
    message: str


ProgressCallback = Callable[[Progress], None]


class Terminal(Protocol):
    """A byte stream to one shell inside a sandbox.

    Bytes are bytes: never decoded here, since a UTF-8 character may be split
    across two reads. ``read`` returns ``b""`` once the shell is gone.
    """

    #: Recent output to show before live bytes (may be empty).
    replay: bytes

    async def read(self, max_bytes: int = 65536) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def resize(self, *, cols: int, rows: int) -> None: ...

    async def close(self) -> None:
        """Detach from the shell, leaving it running in the sandbox."""
        ...


@runtime_checkable
class Backend(Protocol):
    """See the module docstring for what each method must do."""

    #: Short engine name shown to admins ("docker", "libvirt").
    kind: str

    async def start(
        self, spec: SandboxSpec, on_progress: ProgressCallback | None = None
    ) -> Sandbox: ...

    async def stop(self, sandbox: Sandbox) -> None: ...

    async def status(self, sandbox: Sandbox) -> SandboxStatus: ...

    async def list_sandboxes(self) -> list[Sandbox]: ...

    async def open_terminal(
        self, sandbox: Sandbox, *, tab: int, cols: int, rows: int
    ) -> Terminal: ...

    async def run_check(self, sandbox: Sandbox, script: str, *, timeout: float) -> CheckResult: ...

    async def stats(self, sandbox: Sandbox) -> SandboxStats: ...

    async def host_facts(self) -> dict[str, Any]: ...

    async def close(self) -> None:
        """Release connections and the executor."""
        ...
