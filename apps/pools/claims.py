"""Handing a warm sandbox to a Start, and the room the pools hold on hosts.

``claim_ready`` runs inside the start's transaction (``services.start_session``), after
the running-labs limit and the class quotas: a student who may not start does not get a
pool's sandbox either. Two Starts never take the same sandbox: the row is taken by a
conditional DELETE (``state = ready``), which one transaction wins; with PostgreSQL the
candidates are also read with SKIP LOCKED so fifty Starts at once spread over fifty rows
instead of queueing on the first."""

from __future__ import annotations

from django.db.models import Q

from apps.hosts.models import Health
from apps.hosts.placement import Load, sum_loads
from apps.pools.models import Member, WarmSandbox
from apps.sessions.services import ReadySandbox
from apps.sessions.specs import spec_digest

#: How many candidates a Start tries before it starts a sandbox of its own.
CANDIDATES = 4


def usable_host() -> Q:
    """A member on a host that takes new sessions (or on the site's own engine)."""
    return Q(host__isnull=True) | (
        Q(host__enabled=True, host__draining=False) & ~Q(host__health=Health.DOWN)
    )


def claim_ready(user, lab) -> ReadySandbox | None:
    if lab.kind != "container":
        return None
    candidates = (
        WarmSandbox.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(usable_host(), lab=lab, state=Member.READY, spec_digest=spec_digest(lab))
        .order_by("ready_at")[:CANDIDATES]
    )
    for member in candidates:
        taken, _ = WarmSandbox.objects.filter(pk=member.pk, state=Member.READY).delete()
        if taken:
            return ReadySandbox(
                id=member.pk,
                host=member.host,
                backend=member.backend,
                sandbox_name=member.sandbox_name,
                engine_id=member.engine_id,
            )
    return None


def member_loads(host_ids: list[int]) -> dict[int, Load]:
    """Pool sandboxes hold their lab's room on their host like sessions do."""
    return sum_loads(WarmSandbox.objects.filter(host_id__in=host_ids))
