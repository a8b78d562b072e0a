"""Recordings are kept LABSITE_RECORDING_DAYS days after they end, then removed with their
files. ``manage.py prune_recordings`` runs it once; the reconciler calls ``prune_if_due``
every pass, which does the work at most once an hour per process."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.recordings.models import Recording, recordings_dir

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 3600
_last_pruned: float | None = None


def prune(now: datetime | None = None) -> int:
    """Remove recordings that ended (or, never closed, started) before the retention began,
    and cast files older than that which no row knows (a session deleted in the admin).
    Returns how many segments went."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.LABSITE_RECORDING_DAYS)
    old = Recording.objects.filter(
        Q(ended_at__lt=cutoff) | Q(ended_at__isnull=True, started_at__lt=cutoff)
    )
    removed = 0
    for pk, path in old.values_list("pk", "path"):
        (recordings_dir() / path).unlink(missing_ok=True)
        removed += Recording.objects.filter(pk=pk).delete()[0]
    return removed + _remove_orphan_files(cutoff)


def _remove_orphan_files(cutoff: datetime) -> int:
    root = recordings_dir()
    if not root.is_dir():
        return 0
    removed = 0
    for file in root.glob("*/*.cast"):
        relative = file.relative_to(root).as_posix()
        stale = file.stat().st_mtime < cutoff.timestamp()
        if stale and not Recording.objects.filter(path=relative).exists():
            file.unlink(missing_ok=True)
            removed += 1
    for folder in root.iterdir():
        # Only old empty folders: a terminal attaching now may be about to write in one.
        stale = folder.is_dir() and folder.stat().st_mtime < cutoff.timestamp()
        if stale and not any(folder.iterdir()):
            folder.rmdir()
    return removed


async def prune_if_due() -> int:
    """For the reconciler's pass: prune at most once an hour; never raises."""
    global _last_pruned
    now = time.monotonic()
    if _last_pruned is not None and now - _last_pruned < PRUNE_INTERVAL_SECONDS:
        return 0
    _last_pruned = now
    try:
        removed = await database_sync_to_async(prune)()
    except Exception:
        log.exception("pruning recordings failed; trying again in an hour")
        return 0
    if removed:
        log.info("pruned %d terminal recordings older than %d days", removed,
                 settings.LABSITE_RECORDING_DAYS)  # fmt: skip
    return removed
