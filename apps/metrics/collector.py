"""What /metrics reports, read from the database at the moment of the scrape.

A collector rather than counters kept in memory: every Daphne process (and any process
that serves /metrics) answers the same figures, a restart loses nothing, and the figures
are the site's own records (sessions, check runs, hosts, recordings) rather than a second
bookkeeping that could drift from them. Each scrape costs a handful of aggregate queries;
no table is loaded row by row into Python."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from apps.hosts.models import Health, Host
from apps.recordings.models import Recording
from apps.sessions.models import ACTIVE_STATES, CheckRun, LabSession, State

#: Upper bounds (seconds) of the start latency buckets: a container starts in seconds, a VM
#: boot or an image build takes minutes (LABSITE_VM_START_TIMEOUT is 600 s by default).
START_LATENCY_BUCKETS: tuple[float, ...] = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
#: Upper bounds (seconds) of the check duration buckets (LABSITE_CHECK_TIMEOUT is 10 s).
CHECK_DURATION_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30)


class LabsiteCollector(Collector):
    """Builds every labsite_* family from the database on each scrape."""

    def collect(self) -> Iterator[Metric]:
        hosts = list(Host.objects.select_related("pool").order_by("name"))
        yield from _session_families(hosts)
        yield _starts_family(hosts)
        yield _start_latency_family()
        yield from _host_families(hosts)
        if settings.LABSITE_RECORDINGS:
            yield _terminals_family()
        yield from _check_families()


# -- sessions --------------------------------------------------------------------------------


def _session_families(hosts: Sequence[Host]) -> Iterator[Metric]:
    """labsite_sessions, labsite_sessions_queued and the hosts' used resources (two queries)."""
    names = {h.pk: h.name for h in hosts}
    rows = (
        LabSession.objects.filter(state__in=ACTIVE_STATES)
        .values("state", "host_id")
        .annotate(n=Count("pk"), cpus=Sum("lab__cpus"), memory=Sum("lab__memory_mib"))
        .order_by()
    )
    by_state: dict[tuple[str, str], int] = defaultdict(int)
    used: dict[str, list[float]] = {h.name: [0, 0.0, 0] for h in hosts}
    for row in rows:
        host = names.get(row["host_id"], "")
        by_state[(row["state"], host)] += row["n"]
        if host:
            used[host][0] += row["n"]
            used[host][1] += row["cpus"] or 0.0
            used[host][2] += row["memory"] or 0

    sessions = GaugeMetricFamily(
        "labsite_sessions",
        'Lab sessions in each active state, by host (host="": no host yet, or the site\'s '
        "own engine).",
        labels=["state", "host"],
    )
    # Every active state of every host, zeros included: a series that vanishes at zero
    # makes rate() and alerts on it misbehave.
    for state in ACTIVE_STATES:
        for host in ["", *names.values()]:
            sessions.add_metric([str(state), host], by_state.get((str(state), host), 0))
    yield sessions

    # The queue as services.queue_position sees it: requested, and no backend chosen yet.
    queued = LabSession.objects.filter(state=State.REQUESTED, backend="").count()
    yield GaugeMetricFamily(
        "labsite_sessions_queued",
        "Sessions waiting for a host with room (the queue students see).",
        value=queued,
    )

    used_sessions = GaugeMetricFamily(
        "labsite_host_used_sessions",
        "Active sessions placed on the host (a stopping sandbox still holds its place).",
        labels=["host"],
    )
    used_cpus = GaugeMetricFamily(
        "labsite_host_used_cpus",
        "CPUs the labs of the host's active sessions ask for.",
        labels=["host"],
    )
    used_memory = GaugeMetricFamily(
        "labsite_host_used_memory_mib",
        "Memory (MiB) the labs of the host's active sessions ask for.",
        labels=["host"],
    )
    for host, (n, cpus, memory) in used.items():
        used_sessions.add_metric([host], n)
        used_cpus.add_metric([host], cpus)
        used_memory.add_metric([host], memory)
    yield used_sessions
    yield used_cpus
    yield used_memory


def _starts_family(hosts: Sequence[Host]) -> Metric:
    """Starts by outcome: a session that ever reached running started; one that failed
    before it did (state failed, never started) did not. A stop during a start is neither."""
    counts = {h.name: {"running": 0, "failed": 0} for h in hosts}
    succeeded = Q(started_at__isnull=False)
    failed = Q(started_at__isnull=True, state=State.FAILED)
    rows = (
        LabSession.objects.filter(succeeded | failed)
        .values("host__name")
        .annotate(running=Count("pk", filter=succeeded), failed=Count("pk", filter=failed))
        .order_by()
    )
    family = CounterMetricFamily(
        "labsite_session_starts",
        "Session starts by host and outcome (running: the sandbox came up; failed: it never "
        "did), counted from the sessions the database keeps.",
        labels=["host", "outcome"],
    )
    for row in rows:
        counts[row["host__name"] or ""] = {"running": row["running"], "failed": row["failed"]}
    for host, outcomes in sorted(counts.items()):
        for outcome, n in outcomes.items():
            family.add_metric([host, outcome], n)
    return family


def _start_latency_family() -> Metric:
    """From the click on Start (created_at) to a running sandbox (started_at): one query,
    one conditional COUNT per bucket bound."""
    latency = ExpressionWrapper(F("started_at") - F("created_at"), output_field=DurationField())
    bounds = {
        f"le_{i}": Count("pk", filter=Q(latency__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(START_LATENCY_BUCKETS)
    }
    row = (
        LabSession.objects.filter(started_at__isnull=False)
        .annotate(latency=latency)
        .aggregate(count=Count("pk"), total=Sum("latency"), **bounds)
    )
    total = row["total"]
    return _histogram(
        "labsite_start_latency_seconds",
        "Time from the start request to a running sandbox, over every session that started.",
        START_LATENCY_BUCKETS,
        row,
        total.total_seconds() if isinstance(total, timedelta) else float(total or 0),
    )


# -- hosts -----------------------------------------------------------------------------------


def _host_families(hosts: Sequence[Host]) -> Iterator[Metric]:
    """What each host offers and how it is: from the Host rows the reconciler keeps."""
    capacity_sessions = GaugeMetricFamily(
        "labsite_host_capacity_sessions",
        "Sessions the host takes at most.",
        labels=["host", "pool"],
    )
    capacity_cpus = GaugeMetricFamily(
        "labsite_host_capacity_cpus",
        "CPUs the host offers to sandboxes.",
        labels=["host", "pool"],
    )
    capacity_memory = GaugeMetricFamily(
        "labsite_host_capacity_memory_mib",
        "Memory (MiB) the host offers to sandboxes.",
        labels=["host", "pool"],
    )
    up = GaugeMetricFamily(
        "labsite_host_up",
        "1 if the host answered its last probe, 0 if it is down or not checked yet.",
        labels=["host"],
    )
    draining = GaugeMetricFamily(
        "labsite_host_draining",
        "1 if the host takes no new sessions and empties as its sessions end.",
        labels=["host"],
    )
    enabled = GaugeMetricFamily(
        "labsite_host_enabled",
        "1 if an administrator has the host enabled for placement.",
        labels=["host"],
    )
    for host in hosts:
        capacity_sessions.add_metric([host.name, host.pool.name], host.max_sessions)
        capacity_cpus.add_metric([host.name, host.pool.name], host.max_cpus)
        capacity_memory.add_metric([host.name, host.pool.name], host.max_memory_mib)
        up.add_metric([host.name], 1 if host.health == Health.UP else 0)
        draining.add_metric([host.name], 1 if host.draining else 0)
        enabled.add_metric([host.name], 1 if host.enabled else 0)
    yield from (capacity_sessions, capacity_cpus, capacity_memory, up, draining, enabled)


# -- terminals and checks --------------------------------------------------------------------


def _terminals_family() -> Metric:
    """Open terminal connections, from their recordings (every student terminal is recorded).

    A row whose web process died before closing it stays open until retention prunes it;
    counting only those of active sessions keeps such leftovers out once the session ends."""
    open_rows = Recording.objects.filter(ended_at__isnull=True, session__state__in=ACTIVE_STATES)
    return GaugeMetricFamily(
        "labsite_terminals_open",
        "Student terminal connections open now (from the recordings being written).",
        value=open_rows.count(),
    )


def _check_families() -> Iterator[Metric]:
    """Check durations and outcomes: one query over CheckRun."""
    bounds = {
        f"le_{i}": Count("pk", filter=Q(seconds__lte=bound))
        for i, bound in enumerate(CHECK_DURATION_BUCKETS)
    }
    row = CheckRun.objects.aggregate(
        count=Count("pk"),
        total=Sum("seconds"),
        # Aliases must not shadow the fields the filters name.
        outcome_passed=Count("pk", filter=Q(passed=True, timed_out=False)),
        outcome_failed=Count("pk", filter=Q(passed=False, timed_out=False)),
        outcome_timed_out=Count("pk", filter=Q(timed_out=True)),
        **bounds,
    )
    yield _histogram(
        "labsite_check_duration_seconds",
        "How long step checks ran, as the site measured them (deadline included).",
        CHECK_DURATION_BUCKETS,
        row,
        float(row["total"] or 0),
    )
    checks = CounterMetricFamily(
        "labsite_checks",
        "Step checks run, by outcome (timed_out: it ran out of time and judged nothing).",
        labels=["outcome"],
    )
    for outcome in ("passed", "failed", "timed_out"):
        checks.add_metric([outcome], row[f"outcome_{outcome}"])
    yield checks


def _histogram(
    name: str, documentation: str, bounds: Sequence[float], row: Mapping[str, Any], total: float
) -> HistogramMetricFamily:
    """A histogram from cumulative counts ``le_0``… and ``count`` (the +Inf bucket)."""
    buckets = [(floatToGoString(bound), row[f"le_{i}"]) for i, bound in enumerate(bounds)]
    buckets.append(("+Inf", row["count"]))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=total)
