"""One recorded terminal connection ("segment"): a row here, an asciicast v2 file on disk."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


def recordings_dir() -> Path:
    """Where the cast files live; rows keep paths relative to it, so the directory can move."""
    return Path(settings.LABSITE_RECORDINGS_DIR)


class Recording(models.Model):
    session = models.ForeignKey(
        "labsessions.LabSession", on_delete=models.CASCADE, related_name="recordings",
        verbose_name=_("lab session"),
    )  # fmt: skip
    tab = models.PositiveSmallIntegerField(_("terminal"))
    started_at = models.DateTimeField(_("started at"), db_index=True)
    #: Unset while the terminal is attached, or when the web process died before closing it.
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    path = models.CharField(_("file"), max_length=300, unique=True)
    bytes = models.BigIntegerField(_("size in bytes"), default=0)
    cols = models.PositiveSmallIntegerField(_("columns"))
    rows = models.PositiveSmallIntegerField(_("rows"))
    markers = models.PositiveIntegerField(_("markers"), default=0)
    #: Output left out because the disk could not keep up (see recorder.MAX_BACKLOG).
    dropped_bytes = models.BigIntegerField(_("output dropped (bytes)"), default=0)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("terminal recording")
        verbose_name_plural = _("terminal recordings")

    def __str__(self) -> str:
        return f"{self.session_id} · {self.tab} · {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def file_path(self) -> Path:
        return recordings_dir() / self.path

    @property
    def duration(self) -> timedelta | None:
        """The segment's length to the second, once it has ended."""
        if self.ended_at is None:
            return None
        return timedelta(seconds=int((self.ended_at - self.started_at).total_seconds()))
