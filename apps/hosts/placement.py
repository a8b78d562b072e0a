"""Which host runs a new sandbox.

A lab names its pool and the labels a host must have (``placement:`` in lab.yaml). Of that
pool's hosts of the lab's engine, the ones that are enabled, not draining, not down and
carry the labels are *candidates*; of those, the ones with room for the lab's sessions,
CPUs and memory are *open*; the sandbox goes to the open host that would be least loaded
after it (spreading load), ties broken by name. No open host: the student waits in the
queue. No candidate at all: the lab cannot run anywhere, which is said at once.

Called inside the start's transaction, with the candidate rows locked (PostgreSQL), so
two processes placing at the same instant never both take a host's last place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Count, Sum

from apps.hosts.models import Health, Host

#: Sessions that hold a place on their host (a stopping sandbox still uses it).
HOLDING_STATES = ("requested", "starting", "running", "stopping")
ENGINE_FOR_KIND = {"container": "docker", "vm": "libvirt"}


@dataclass(frozen=True)
class Load:
    sessions: int = 0
    cpus: float = 0.0
    memory_mib: int = 0


@dataclass(frozen=True)
class Placement:
    """The outcome: a ``host``; or ``queued`` (candidates exist, none has room); or neither
    with ``unmanaged`` (no host of this engine is configured: the site's own engine)."""

    host: Host | None = None
    queued: bool = False
    unmanaged: bool = False


class NoHostForLab(Exception):
    """No host of the lab's pool offers what it needs (or all are draining or disabled)."""

    def __init__(self, pool: str, labels: list[str]) -> None:
        super().__init__(pool, labels)
        self.pool = pool
        self.labels = labels


def place(lab, *, lock: bool = True) -> Placement:
    engine = ENGINE_FOR_KIND[lab.kind]
    hosts = Host.objects.filter(engine=engine)
    if not hosts.exists():
        return Placement(unmanaged=True)
    wanted = set(lab.host_labels or [])
    candidates = hosts.filter(pool__name=lab.pool, enabled=True, draining=False)
    if lock:
        # The hosts' rows alone (the join would lock their pool's row as well).
        candidates = candidates.select_for_update(of=("self",))
    candidates = [h for h in candidates if wanted <= set(h.labels or [])]
    if not candidates:
        raise NoHostForLab(lab.pool, sorted(wanted))
    loads = loads_of([h.pk for h in candidates])
    need = Load(1, lab.cpus, lab.memory_mib)
    open_hosts = [
        h for h in candidates if h.health != Health.DOWN and fits(h, loads.get(h.pk, Load()), need)
    ]
    if not open_hosts:
        return Placement(queued=True)
    best = min(open_hosts, key=lambda h: (fullness(h, loads.get(h.pk, Load()), need), h.name))
    return Placement(host=best)


#: What else holds room on hosts (the warm pools' sandboxes): each ``(host_ids)`` →
#: {host id: Load}, added to the sessions'. Registered in the owning app's ready().
OTHER_LOADS: list[Callable[[list[int]], dict[int, Load]]] = []


def loads_of(host_ids: list[int]) -> dict[int, Load]:
    """What the sessions (and the other holders) on each host hold, by the labs' resources."""
    from apps.sessions.models import LabSession

    rows = LabSession.objects.filter(host_id__in=host_ids, state__in=HOLDING_STATES)
    loads = sum_loads(rows)
    for other in OTHER_LOADS:
        for host_id, load in other(host_ids).items():
            have = loads.get(host_id, Load())
            loads[host_id] = Load(
                have.sessions + load.sessions,
                have.cpus + load.cpus,
                have.memory_mib + load.memory_mib,
            )
    return loads


def sum_loads(rows) -> dict[int, Load]:
    """Rows with ``host_id`` and a ``lab``, summed per host."""
    rows = (
        rows.values("host_id")
        .annotate(n=Count("id"), cpus=Sum("lab__cpus"), memory=Sum("lab__memory_mib"))
        .order_by()
    )
    return {r["host_id"]: Load(r["n"], r["cpus"] or 0.0, r["memory"] or 0) for r in rows}


def fits(host: Host, load: Load, need: Load) -> bool:
    """Room for ``need``; a CPU or memory capacity of 0 is not counted."""
    return (
        load.sessions + need.sessions <= host.max_sessions
        and (not host.max_cpus or load.cpus + need.cpus <= host.max_cpus + 1e-9)
        and (not host.max_memory_mib or load.memory_mib + need.memory_mib <= host.max_memory_mib)
    )


def fullness(host: Host, load: Load, need: Load) -> float:
    """The host's most used resource, as a fraction, once ``need`` is on it."""
    used = [(load.sessions + need.sessions) / max(host.max_sessions, 1)]
    if host.max_cpus:
        used.append((load.cpus + need.cpus) / host.max_cpus)
    if host.max_memory_mib:
        used.append((load.memory_mib + need.memory_mib) / host.max_memory_mib)
    return max(used)
