"""A guest's serial console as a byte stream the event loop reads.

One :class:`ConsoleHub` per running guest holds one libvirt console stream
(opened with ``VIR_DOMAIN_CONSOLE_FORCE``, so it takes the console over from any
earlier holder) and keeps the last ``limit`` bytes of output in a ring buffer,
whether or not anybody watches. A :class:`ConsoleTerminal` is one viewer: it
starts with the buffer as ``replay`` and then gets every new byte. Closing a
terminal leaves the hub, and so the shell and the buffer, in place.

Reading is driven by libvirt stream events on the asyncio loop (see
``events.py``), with no thread per console. Flow control: while any viewer has
more than ``HIGH_WATERMARK`` bytes it has not read, the hub stops taking data
from libvirt, and takes it again once every viewer is below ``LOW_WATERMARK``.
Writes are RPCs and go through the backend's executor.

A guest's console has one holder at a time: another process that opens it (a
second web worker, a restarted server) takes it over, and this hub's viewers
then read the end of the stream; a terminal opened afterwards takes it back
and replays the console log that libvirt keeps on the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import libvirt

log = logging.getLogger(__name__)

HIGH_WATERMARK = 256 * 1024
LOW_WATERMARK = 64 * 1024
_EVENTS_LIVE = libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP
_EVENTS_READ = _EVENTS_LIVE | libvirt.VIR_STREAM_EVENT_READABLE

#: Runs a blocking function in the backend's executor.
Call = Callable[..., Awaitable[Any]]
ResizeFn = Callable[[int, int], Awaitable[None]]


class ConsoleHub:
    """The one console stream of one guest, its output buffer and its viewers."""

    def __init__(self, name: str, uuid: str, call: Call, *, limit: int = 64 * 1024) -> None:
        self.name = name
        self.uuid = uuid
        self._call = call
        self._limit = limit
        self._buffer = bytearray()
        self._viewers: set[ConsoleTerminal] = set()
        self._stream: libvirt.virStream | None = None
        self._changed = asyncio.Event()
        self._paused = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        #: True when the buffer holds everything since the guest booted.
        self.complete = False

    # --- life cycle ---------------------------------------------------------

    async def open(self, conn: libvirt.virConnect, dom: libvirt.virDomain, seed: bytes) -> None:
        """Take the console over and start reading; ``seed`` is earlier output to keep."""
        self._append(seed)
        stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        await self._call(dom.openConsole, None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        self._stream = stream
        stream.eventAddCallback(_EVENTS_READ, self._on_event, None)
        log.info("console of %s attached", self.name)

    async def close(self) -> None:
        """Stop reading and release the stream; viewers then read ``b""``."""
        if not self.closed:
            self._mark_closed()
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.eventRemoveCallback()
            await self._call(stream.abort)
        except libvirt.libvirtError as exc:
            log.debug("console of %s: abort: %s", self.name, exc)
        log.info("console of %s released", self.name)

    def _mark_closed(self) -> None:
        self.closed = True
        self._changed.set()
        for viewer in self._viewers:
            viewer.wake()

    # --- reading (on the loop, called by libvirt) ---------------------------

    def _on_event(self, stream: libvirt.virStream, events: int, _opaque: object) -> None:
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            self._drain(stream)
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self._finish("hang-up")

    def _drain(self, stream: libvirt.virStream) -> None:
        while not self._paused and not self.closed:
            try:
                data = stream.recv(65536)
            except libvirt.libvirtError as exc:
                self._finish(f"error: {exc}")
                return
            if isinstance(data, int):  # -2: nothing more for now
                return
            if not data:
                self._finish("end of stream")
                return
            self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        self._append(data)
        for viewer in self._viewers:
            viewer.feed(data)
        self._changed.set()
        if any(v.pending > HIGH_WATERMARK for v in self._viewers):
            self._pause(True)

    def _append(self, data: bytes) -> None:
        self._buffer += data
        excess = len(self._buffer) - self._limit
        if excess > 0:
            # Start the kept output at a line boundary rather than inside an escape sequence.
            cut = self._buffer.find(b"\n", excess)
            del self._buffer[: cut + 1 if 0 <= cut < excess + 1024 else excess]

    def _finish(self, why: str) -> None:
        if not self.closed:
            log.info("console of %s ended (%s)", self.name, why)
            self._mark_closed()
            task = asyncio.get_running_loop().create_task(self.close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _pause(self, paused: bool) -> None:
        if paused == self._paused or self._stream is None or self.closed:
            return
        self._paused = paused
        self._stream.eventUpdateCallback(_EVENTS_LIVE if paused else _EVENTS_READ)
        if not paused:  # data may have been waiting while paused
            self._drain(self._stream)

    def viewer_drained(self) -> None:
        if self._paused and all(v.pending < LOW_WATERMARK for v in self._viewers):
            self._pause(False)

    # --- for the backend ----------------------------------------------------

    def snapshot(self) -> bytes:
        return bytes(self._buffer)

    async def wait_until(self, predicate: Callable[[bytes], bool], within: float) -> bool:
        """Wait until ``predicate(output so far)`` holds; False after ``within`` s or at the end."""
        deadline = time.monotonic() + within
        while True:
            self._changed.clear()
            if predicate(bytes(self._buffer)):
                return True
            remaining = deadline - time.monotonic()
            if self.closed or remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def attach(self, resize: ResizeFn) -> ConsoleTerminal:
        viewer = ConsoleTerminal(self, resize, replay=self.snapshot())
        self._viewers.add(viewer)
        if self.closed:
            viewer.wake()
        return viewer

    def detach(self, viewer: ConsoleTerminal) -> None:
        self._viewers.discard(viewer)
        self.viewer_drained()

    async def write(self, data: bytes) -> None:
        stream = self._stream
        if stream is None or self.closed:
            raise ConnectionError("the console is closed")
        await self._call(_send_all, stream, data)


def _send_all(stream: libvirt.virStream, data: bytes) -> None:
    view = memoryview(data)
    while view:
        sent = stream.send(bytes(view[:65536]))
        if sent == -2:  # the stream's queue is full: rare, and only for a moment
            time.sleep(0.01)
            continue
        view = view[sent:]


class ConsoleTerminal:
    """One viewer of a guest's serial console (``provisioning.base.Terminal``)."""

    def __init__(self, hub: ConsoleHub, resize: ResizeFn, *, replay: bytes) -> None:
        self.replay = replay
        self._hub = hub
        self._resize = resize
        self._pending = bytearray()
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def feed(self, data: bytes) -> None:
        self._pending += data
        self._ready.set()

    def wake(self) -> None:
        self._ready.set()

    async def read(self, max_bytes: int = 65536) -> bytes:
        while not self._pending:
            if self._closed or self._hub.closed:
                return b""
            self._ready.clear()
            await self._ready.wait()
        data = bytes(self._pending[:max_bytes])
        del self._pending[:max_bytes]
        self._hub.viewer_drained()
        return data

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionError("the terminal is closed")
        await self._hub.write(data)

    async def resize(self, *, cols: int, rows: int) -> None:
        if not self._closed and not self._hub.closed:
            await self._resize(cols, rows)

    async def close(self) -> None:
        self._closed = True
        self._ready.set()
        self._hub.detach(self)
