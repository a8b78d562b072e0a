"""Records one attached student terminal ("segment") as an asciicast v2 file.

The terminal consumer calls ``output``, ``resize`` and ``marker`` on the event loop for
every chunk, so they only append a line to a buffer in memory. The buffer goes to disk
through the recordings' own small thread pool (files.py), at most about once a second or
when it passes FLUSH_BYTES, and on close; one write per segment is in flight at a time, so
lines stay in order. If the disk falls behind by more than MAX_BACKLOG, further output is
dropped (counted and logged once) rather than held in memory or waited for: a recording
never slows a keystroke.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from pathlib import Path

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from apps.recordings import asciicast, files
from apps.recordings.models import Recording

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
FLUSH_BYTES = 64 * 1024
#: Bytes of one segment waiting for the disk beyond which its output is dropped.
MAX_BACKLOG = 4 * 2**20


class Recorder:
    """Records one attached student terminal as asciicast v2."""

    def __init__(self, recording_id: int | None = None, path: Path | None = None,
                 header: str = "") -> None:  # fmt: skip
        self.recording_id = recording_id
        self.path = path
        self.enabled = path is not None
        self.markers = 0
        self.bytes_written = 0
        self.dropped = 0
        self._decoder = asciicast.output_decoder()
        self._t0 = time.monotonic()
        self._lines: list[str] = [header] if header else []
        self._pending = len(header)  # characters buffered, a close enough measure of bytes
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task | None = None
        self._closing = False
        self._failed = False

    @classmethod
    async def open(cls, session_id, tab: int, cols: int, rows: int) -> Recorder:
        """A recorder for a terminal just attached; a disabled one when recordings are off
        or the row cannot be written (a terminal never fails over its recording)."""
        if not settings.LABSITE_RECORDINGS:
            return cls.disabled()
        started = timezone.now()
        try:
            recording, title = await _create_row(session_id, tab, cols, rows, started)
        except Exception:
            log.exception("recording of session %s tab %s not started", session_id, tab)
            return cls.disabled()
        header = asciicast.header_line(cols=cols, rows=rows, started=started, title=title)
        recorder = cls(recording.pk, recording.file_path, header)
        recorder._schedule()
        return recorder

    @classmethod
    def disabled(cls) -> Recorder:
        """One that records nothing (recordings switched off; tests of the bridge alone)."""
        return cls()

    def output(self, data: bytes) -> None:
        if not self.enabled:
            return
        text = self._decoder.decode(data)
        if not text:
            return  # only the first bytes of a character so far
        if self._pending + self._in_flight > MAX_BACKLOG:
            self._drop(len(data))
            return
        self._add(asciicast.OUTPUT, text)

    def resize(self, cols: int, rows: int) -> None:
        if self.enabled:
            self._add(asciicast.RESIZE, asciicast.resize_data(cols, rows))

    def marker(self, label: str) -> None:
        if self.enabled:
            self.markers += 1
            self._add(asciicast.MARKER, label)

    async def close(self) -> None:
        """Write what is left and note the end on the row. Never raises."""
        if not self.enabled or self._closing:
            return
        self._closing = True
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._add(asciicast.OUTPUT, tail)
        try:
            self._kick()
            if self._writer is not None:
                # Shielded: a cancelled disconnect must not cut the last write short.
                await asyncio.shield(self._writer)
            await _finish_row(self.recording_id, self.bytes_written, self.markers, self.dropped)
        except Exception:
            log.exception("recording %s not closed cleanly", self.recording_id)

    # -- buffering ------------------------------------------------------------------------

    def _add(self, code: str, data: str) -> None:
        if self._failed:
            return
        line = asciicast.event_line(time.monotonic() - self._t0, code, data)
        self._lines.append(line)
        self._pending += len(line)
        if not self._closing:
            self._schedule()

    def _schedule(self) -> None:
        if self._pending >= FLUSH_BYTES:
            self._kick()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._kick)

    def _kick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines and (self._writer is None or self._writer.done()):
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """Write the buffer, one chunk at a time; more if it filled up again meanwhile."""
        loop = asyncio.get_running_loop()
        while self._lines and not self._failed:
            data = "".join(self._lines).encode()
            self._lines, self._pending, self._in_flight = [], 0, len(data)
            try:
                await loop.run_in_executor(files.pool(), files.append, self.path, data)
                self.bytes_written += len(data)
            except OSError as exc:
                # A full or read-only disk: stop recording this segment, keep the terminal.
                log.warning("recording %s stopped: %s", self.recording_id, exc)
                self._failed = True
                self._lines, self._pending = [], 0
            finally:
                self._in_flight = 0
            if not self._closing and self._pending < FLUSH_BYTES:
                break
        if self._lines and not self._closing and not self._failed:
            self._schedule()

    def _drop(self, size: int) -> None:
        if not self.dropped:
            log.warning("recording %s: the disk is behind by more than %d bytes; dropping "
                        "output until it catches up", self.recording_id, MAX_BACKLOG)  # fmt: skip
        self.dropped += size


@database_sync_to_async
def _create_row(session_id, tab: int, cols: int, rows: int, started) -> tuple[Recording, str]:
    from apps.sessions.models import LabSession

    session = LabSession.objects.select_related("lab", "owner").get(pk=session_id)
    # The random part keeps two windows attaching the same tab in one instant apart.
    name = f"{tab}-{started:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}.cast"
    recording = Recording.objects.create(
        session=session, tab=tab, started_at=started, path=f"{session.pk}/{name}",
        cols=cols, rows=rows,
    )  # fmt: skip
    return recording, f"{session.lab.title} · {session.owner.get_username()} · {tab}"


@database_sync_to_async
def _finish_row(recording_id: int, written: int, markers: int, dropped: int) -> None:
    Recording.objects.filter(pk=recording_id).update(
        ended_at=timezone.now(), bytes=written, markers=markers, dropped_bytes=dropped
    )
