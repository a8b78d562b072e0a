"""How many ready sandboxes each lab's pool should hold now.

A lab's file sets a standing size (``warm_pool:`` in lab.yaml); an administrator's
``PoolSize`` replaces it; other apps add demand of their own (teaching: a class's lab
scheduled by its instructor), and a lab's target is the largest of these. Only ready
container labs have pools. The site's cap on all pool sandboxes together is applied by
the keeper, not here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from apps.courses.models import Lab, LabStatus
from apps.pools.models import PoolSize

#: Demand from other apps: ``(now)`` → {lab id: sandboxes wanted ready}. Registered in
#: their AppConfig.ready (teaching's scheduled labs).
DEMAND_SOURCES: list[Callable[[datetime], dict[int, int]]] = []


def targets(now: datetime) -> dict[int, int]:
    """{lab id: ready sandboxes wanted} for every lab whose pool is not empty."""
    wanted = dict(Lab.objects.filter(warm_pool__gt=0).values_list("pk", "warm_pool"))
    wanted.update(PoolSize.objects.values_list("lab_id", "size"))
    for source in DEMAND_SOURCES:
        for lab_id, n in source(now).items():
            wanted[lab_id] = max(wanted.get(lab_id, 0), n)
    poolable = set(
        Lab.objects.filter(
            pk__in=[k for k, n in wanted.items() if n > 0],
            kind="container",
            status=LabStatus.READY,
        ).values_list("pk", flat=True)
    )
    return {lab_id: n for lab_id, n in wanted.items() if lab_id in poolable}
