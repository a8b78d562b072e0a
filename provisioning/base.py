"""The contract every sandbox backend fulfils.

A *backend* runs sandboxes (a Docker container, a libvirt guest) for one engine or host.
The Django side keeps one backend object per engine and calls it from the session
services, the runner and the reconciler; nothing in this package imports Django, so a
backend can be exercised from a plain script or a benchmark.

To write one, implement every method of ``Backend`` below (each documents what it must
do, what it returns and when it may be called). Rules that hold for all of them:

- every method is a coroutine; blocking SDK calls go through the backend's own bounded
  executors (one per kind of work: interactive calls, checks, slow work such as image
  builds), never on the event loop, and never so that a slow call delays an interactive one;
- errors are raised, never returned: ``SandboxError`` when the engine refuses (its
  ``message`` is fit for a student, its ``detail`` is for the log), ``HostUnavailable``
  when the engine does not answer at all;
- the labels of a sandbox (``Sandbox.labels``) are the only state a backend keeps: after a
  restart of the web site, ``list_sandboxes`` finds everything again.

A new engine is a new package with a class that implements this protocol; see "How to
add a backend" in the README.
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


#: ``Terminal.ended_reason`` when another viewer took the terminal (a VM's serial console).
TERMINAL_TAKEN = "taken"


class SandboxError(Exception):
    """The engine refused to do what was asked.

    ``message`` (also ``str()``) is fit for a student's page: plain words, no engine
    output. ``detail`` is what the engine said, for the log and for admins only.
    """

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class HostUnavailable(SandboxError):
    """The engine or its host does not answer. Nothing is known about the sandbox."""


class SandboxStatus(enum.StrEnum):
    """What an engine says about one sandbox now (see ``Backend.status``)."""

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
    #: A Dockerfile whose image ``image`` names (``FROM`` a local image); the backend builds
    #: it once per host, however many sandboxes ask at the same time. Containers only.
    dockerfile: str = ""


@dataclass(frozen=True)
class Sandbox:
    """A sandbox as the engine knows it: its id on the engine and its labels.

    ``status`` and ``exit_detail`` are filled in by ``list_sandboxes`` (what the engine
    said at that moment; ``exit_detail`` says why an exited sandbox ended, e.g. "the
    out-of-memory killer stopped it"); a Sandbox built from a database row leaves them
    unset.
    """

    name: str
    engine_id: str
    labels: Mapping[str, str]
    status: SandboxStatus | None = None
    exit_detail: str = ""
    #: Bytes written to the sandbox's own disk, where the listing reports it cheaply.
    disk_bytes: int | None = None

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
    #: Bytes the sandbox has written to its own disk (container layer, guest overlay);
    #: None where the engine cannot tell.
    disk_bytes: int | None = None


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
    #: Why ``read`` returned ``b""``: "" (the shell or the sandbox ended) or
    #: ``TERMINAL_TAKEN`` (another viewer took a console that allows only one).
    ended_reason: str

    async def read(self, max_bytes: int = 65536) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def resize(self, *, cols: int, rows: int) -> None: ...

    async def close(self) -> None:
        """Detach from the shell, leaving it running in the sandbox."""
        ...


@runtime_checkable
class Backend(Protocol):
    """One engine or host. One object per engine, shared by every session on it."""

    #: Short engine name shown to admins ("docker", "libvirt").
    kind: str

    async def start(
        self,
        spec: SandboxSpec,
        on_progress: ProgressCallback | None = None,
        *,
        timeout: float,
    ) -> Sandbox:
        """Create and start the sandbox described by ``spec``; return it once it is usable
        (a shell can be attached, checks can run).

        Idempotent: if a sandbox named ``spec.name`` already exists and runs, return it; if
        it exists but is stopped, remove it and create it anew. Builds ``spec.dockerfile``
        first where one is given. May take seconds (a VM boot: tens of seconds); reports
        steps through ``on_progress``. ``timeout`` is the caller's budget in seconds for
        the whole start: past it, raise ``SandboxError`` and leave nothing running.
        Raises ``SandboxError`` when the engine refuses (image missing, out of memory),
        ``HostUnavailable`` when it does not answer. May be cancelled (the session was
        stopped meanwhile): the caller then calls ``stop``.
        """
        ...

    async def stop(self, sandbox: Sandbox) -> None:
        """Stop and remove the sandbox and everything it owns (overlay disks, networks,
        volumes). Idempotent: a sandbox that is already gone is not an error (the engine's
        "not found" and "already being removed" are logged and treated as done). May be
        called at any time, also while ``start`` of the same sandbox is still running
        elsewhere. Raises ``HostUnavailable`` when the engine does not answer (the caller
        retries later)."""
        ...

    async def status(self, sandbox: Sandbox) -> SandboxStatus:
        """What the engine says *now*, never a cached answer:

        - before ``start`` was called, or after ``stop``: ``MISSING``;
        - during a slow start (image being built, guest still booting): ``STARTING``;
        - running: ``RUNNING``;
        - ended by itself (the student ran ``poweroff``, PID 1 died, the OOM killer took
          it, the engine restarted without it): ``EXITED``;
        - the host does not answer (engine down, connection refused): raises
          ``HostUnavailable``. The caller decides whether that means "lost": a single
          failed probe must not end a student's session.
        """
        ...

    async def list_sandboxes(self) -> list[Sandbox]:
        """Every sandbox on this engine that carries this site in its labels, running or
        not, each with its ``status`` (and ``exit_detail`` if it exited). This is how the
        reconciler adopts sandboxes after a restart, finds orphans, and notices sandboxes
        that ended by themselves, all in one call per pass. Raises ``HostUnavailable``."""
        ...

    async def open_terminal(self, sandbox: Sandbox, *, tab: int, cols: int, rows: int) -> Terminal:
        """Attach to terminal ``tab`` (1-based) of a running sandbox at the given size.

        The shell lives *inside* the sandbox (tmux in a container, the serial console of a
        guest), so calling this again after a disconnect, from any process, reaches the same
        shell; ``Terminal.replay`` holds recent output to show first. Raises
        ``SandboxError`` if the sandbox is not running or the tab cannot exist."""
        ...

    async def run_check(self, sandbox: Sandbox, script: str, *, timeout: float) -> CheckResult:
        """Run ``script`` (a shell script's text) inside the sandbox, outside the student's
        terminal, and report its exit code and output.

        The interpreter and basic tools must be ones the student cannot replace (see each
        backend for what it guarantees). The backend enforces ``timeout`` itself, from the
        outside: a script still running then is killed and reported with
        ``timed_out=True``, however the sandbox behaves. Raises ``SandboxError`` if the
        sandbox is not running."""
        ...

    async def run_script(self, sandbox: Sandbox, script: str, *, timeout: float) -> CheckResult:
        """Run ``script`` as the student would type it: with the sandbox's *own* shell and
        tools (its ``sh``, its ``PATH``), in ``/root``, with ``LANG=C.UTF-8``, outside the
        student's terminal; report its exit code and output (``passed``: it exited 0).

        Unlike ``run_check`` nothing here is the platform's, on purpose: the lab validator
        runs a step's solution with this to prove that what the student is told to type
        works in the image as shipped. The backend still enforces ``timeout`` from the
        outside (killed, ``timed_out=True``). Raises ``SandboxError`` if the sandbox is not
        running."""
        ...

    async def stats(self, sandbox: Sandbox) -> SandboxStats:
        """Current memory, CPU and disk use, for admins, idle detection and disk limits."""
        ...

    async def host_facts(self) -> dict[str, Any]:
        """What admins are shown about the engine (version, capacity, and for libvirt
        whether guests run under KVM or QEMU TCG). Called by the reconciler after a pass."""
        ...

    async def close(self) -> None:
        """Release connections and the executors."""
        ...
