"""Each host's load once a minute (sessions, CPUs and memory its sessions hold, up or
not), written by the reconciler for the admin's charts and kept KEEP_DAYS."""

from __future__ import annotations

import time
from datetime import timedelta

from channels.db import database_sync_to_async
from django.utils import timezone

from apps.hosts.models import Health, Host, HostSample
from apps.hosts.placement import Load, loads_of

EVERY_SECONDS = 60
KEEP_DAYS = 7
_last = 0.0


async def sample_if_due() -> None:
    global _last
    if time.monotonic() - _last < EVERY_SECONDS:
        return
    _last = time.monotonic()
    await database_sync_to_async(sample)()


def sample() -> None:
    now = timezone.now()
    hosts = list(Host.objects.all())
    loads = loads_of([h.pk for h in hosts])
    HostSample.objects.bulk_create(
        HostSample(
            host=h, at=now, up=h.health == Health.UP,
            sessions=loads.get(h.pk, Load()).sessions,
            cpus=loads.get(h.pk, Load()).cpus,
            memory_mib=loads.get(h.pk, Load()).memory_mib,
        )
        for h in hosts
    )  # fmt: skip
    HostSample.objects.filter(at__lt=now - timedelta(days=KEEP_DAYS)).delete()
