"""What the admin's dashboard shows, read from the database (so every web process shows
the same): each host's health and load, the queue, the live sessions, and the start
latency and failures over the last hours."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from apps.hosts.models import Health, Host, HostSample
from apps.hosts.placement import Load, loads_of
from apps.sessions.models import ACTIVE_STATES, EndReason, LabSession, State

#: The charts' window and resolution.
WINDOW = timedelta(hours=6)
BUCKET = timedelta(minutes=5)


def virtualization_words(facts: dict) -> str:
    """KVM or software emulation, said in words (libvirt says ``kvm`` or ``qemu``)."""
    kind = facts.get("virt_type")
    if kind == "kvm":
        return _("KVM: hardware virtualization")
    if kind == "qemu":
        return _("Software emulation (QEMU TCG, no KVM): VMs are slow")
    return ""


@dataclass
class HostRow:
    host: Host
    load: Load
    sessions_pct: int
    cpus_pct: int
    memory_pct: int
    virtualization: str
    state_words: str
    live: list[LabSession] = field(default_factory=list)


def host_rows() -> list[HostRow]:
    hosts = list(Host.objects.select_related("pool").order_by("pool__name", "name"))
    loads = loads_of([h.pk for h in hosts])
    live = {}
    for s in LabSession.objects.filter(host__in=hosts, state__in=ACTIVE_STATES).select_related(
        "owner", "lab"
    ):
        live.setdefault(s.host_id, []).append(s)
    rows = []
    for h in hosts:
        load = loads.get(h.pk, Load())
        rows.append(
            HostRow(
                host=h,
                load=load,
                sessions_pct=_pct(load.sessions, h.max_sessions),
                cpus_pct=_pct(load.cpus, h.max_cpus),
                memory_pct=_pct(load.memory_mib, h.max_memory_mib),
                virtualization=virtualization_words(h.facts or {}),
                state_words=state_words(h),
                live=live.get(h.pk, []),
            )
        )
    return rows


def state_words(host: Host) -> str:
    if not host.enabled:
        return _("Disabled: takes no sessions")
    if host.health == Health.DOWN:
        since = timezone.localtime(host.down_since).strftime("%H:%M") if host.down_since else ""
        return _("Down since %(t)s") % {"t": since}
    if host.draining:
        return _("Draining: takes no new sessions")
    if host.health == Health.UNKNOWN:
        return _("Not checked yet")
    return _("Up")


def _pct(used: float, limit: float) -> int:
    return min(100, round(100 * used / limit)) if limit else 0


def queue() -> list[LabSession]:
    return list(
        LabSession.objects.filter(state=State.REQUESTED, backend="")
        .select_related("owner", "lab")
        .order_by("created_at")
    )


def totals() -> dict:
    counts = {s: 0 for s in ACTIVE_STATES}
    for state in LabSession.objects.filter(state__in=ACTIVE_STATES).values_list("state", flat=True):
        counts[state] += 1
    hour_ago = timezone.now() - timedelta(hours=1)
    recent = LabSession.objects.filter(created_at__gte=hour_ago)
    return {
        "running": counts[State.RUNNING],
        "starting": counts[State.STARTING] + counts[State.REQUESTED],
        "queued": LabSession.objects.filter(state=State.REQUESTED, backend="").count(),
        "starts_last_hour": recent.count(),
        "failures_last_hour": recent.filter(end_reason=EndReason.ERROR).count(),
    }


def series(now=None) -> dict:
    """Chart data as uPlot wants it: x (unix seconds) then one array per series."""
    now = now or timezone.now()
    since = now - WINDOW
    buckets = int(WINDOW / BUCKET)
    xs = [int((since + BUCKET * (i + 1)).timestamp()) for i in range(buckets)]
    latencies: list[list[float]] = [[] for _ in range(buckets)]
    failures = [0] * buckets
    for created, started, reason in LabSession.objects.filter(created_at__gte=since).values_list(
        "created_at", "started_at", "end_reason"
    ):
        i = min(int((created - since) / BUCKET), buckets - 1)
        if started:
            latencies[i].append((started - created).total_seconds())
        if reason == EndReason.ERROR:
            failures[i] += 1
    p50 = [round(statistics.median(v), 2) if v else None for v in latencies]
    p95 = [round(_p95(v), 2) if v else None for v in latencies]
    load: dict[str, list] = {}
    names = dict(Host.objects.values_list("pk", "name"))
    samples = HostSample.objects.filter(at__gte=since).values_list("host_id", "at", "sessions")
    per_host: dict[int, list] = {pk: [None] * buckets for pk in names}
    for host_id, at, sessions in samples:
        i = min(int((at - since) / BUCKET), buckets - 1)
        if host_id in per_host:
            per_host[host_id][i] = max(per_host[host_id][i] or 0, sessions)
    for pk, values in per_host.items():
        load[names[pk]] = values
    return {
        "x": xs,
        "start": {"p50": p50, "p95": p95, "failures": failures},
        "load": load,
        "labels": {
            "p50": _("Start, median (s)"),
            "p95": _("Start, 95th percentile (s)"),
            "failures": _("Failed starts"),
            "sessions": _("Sessions"),
            "seconds": _("seconds"),
            "time": _("Time"),
        },
    }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
