"""Remove terminal recordings older than LABSITE_RECORDING_DAYS (the reconciler also does
this, hourly); for a cron job or by hand."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.recordings.retention import prune


class Command(BaseCommand):
    help = "Remove terminal recordings (rows and files) older than LABSITE_RECORDING_DAYS."

    def handle(self, *args, **options):
        removed = prune()
        days = settings.LABSITE_RECORDING_DAYS
        self.stdout.write(f"{removed} recordings older than {days} days removed")
