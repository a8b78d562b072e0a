"""A guest's serial console as a byte stream the event loop reads, and who holds it.

One :class:`ConsoleHub` per running guest and backend object holds one libvirt
console stream and keeps the last ``limit`` bytes of output in a ring buffer,
whether or not anybody watches. A :class:`ConsoleTerminal` is one viewer: it
starts with the buffer as ``replay`` and then gets every new byte. Closing a
terminal leaves the hub, and so the shell and the buffer, in place. Viewers in
one process share their hub, so two tabs served by one web process both see the
console and neither takes it from the other.

Reading is driven by libvirt stream events on the asyncio loop (see
``events.py``), with no thread per console. Flow control: while any viewer has
more than ``HIGH_WATERMARK`` bytes it has not read, the hub stops taking data
from libvirt, and takes it again once every viewer is below ``LOW_WATERMARK``.
Writes are RPCs and go through the backend's executor.

One holder at a time, and no fight over it
------------------------------------------
libvirt gives a guest's console to one stream at a time (``virchrdev.c``): an
open without flags fails with ``VIR_ERR_OPERATION_FAILED`` ("Active console
session exists") while another stream holds it, and ``VIR_DOMAIN_CONSOLE_FORCE``
aborts the holder's stream, whose next read fails with "stream had I/O failure".
Two web processes (or a web process and the runner that booted the guest) each
have their own hub, so a page served by one takes the console from a page
served by the other. If both pages then reconnected automatically they would
take it from each other for ever. So:

- the *last opener wins*: a hub opens without flags and, only if someone else
  holds the console, logs it and opens again with ``FORCE``. A viewer who opens
  the terminal always gets it, even from a stale holder;
- a hub whose stream ends without being closed here asks libvirt why before
  telling its viewers: it tries to open the console again *without* ``FORCE``.
  If that fails with ``VIR_ERR_OPERATION_FAILED`` the console is held by
  another stream, so it was taken over and ``ended_reason`` is :data:`TAKEN`;
  otherwise (the guest powered off, libvirtd went away, nobody holds it) it is
  ``""``. Only then do the viewers' ``read()`` return ``b""``;
- a hub never reopens by itself. The consumer ends a terminal whose
  ``ended_reason`` is :data:`TAKEN` with a dedicated close code and the page
  does not reconnect on its own; the student takes the console back with a
  click, which opens a terminal (and a new hub) again: one takeover per click,
  never a loop. A terminal that ends with ``""`` may be reconnected as usual.

The runner's hub, which watched the guest boot, is taken over the same way
when a student opens the terminal; ``startup.wait_usable`` then stops watching
for the prompt and relies on the guest agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import libvirt

from provisioning.base import TERMINAL_TAKEN
from provisioning.libvirt import host
from provisioning.libvirt.domains import starting_up

log = logging.getLogger(__name__)

HIGH_WATERMARK = 256 * 1024
LOW_WATERMARK = 64 * 1024
#: ``ended_reason`` of a terminal whose console another viewer took over.
TAKEN = TERMINAL_TAKEN
#: Seconds ``resize`` waits for the guest to apply a size; a slower (or hung) guest agent
#: applies it later, without holding up the caller's keystrokes.
RESIZE_WAIT = 2.0
_EVENTS_LIVE = libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP
_EVENTS_READ = _EVENTS_LIVE | libvirt.VIR_STREAM_EVENT_READABLE

#: Runs a blocking function in the backend's executor.
Call = Callable[..., Awaitable[Any]]
ResizeFn = Callable[[int, int], Awaitable[None]]


class ConsoleHubs:
    """One backend's hub of each guest: opened when first needed (seeded from the console
    log libvirt keeps on the host), shared by its viewers, replaced once it has ended."""

    def __init__(self, call: Call, *, limit: int) -> None:
        self._call = call
        self._limit = limit
        self._hubs: dict[str, ConsoleHub] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(
        self,
        conn: libvirt.virConnect,
        dom: libvirt.virDomain,
        name: str,
        console_log: Callable[[], Awaitable[Path | None]],
    ) -> ConsoleHub:
        uuid = dom.UUIDString()
        async with self._locks.setdefault(name, asyncio.Lock()):
            hub = self._hubs.get(name)
            if hub is not None and hub.usable and hub.uuid == uuid:
                return hub
            path = await console_log()
            seed = await self._call(host.tail, path, self._limit) if path else None
            hub = ConsoleHub(name, uuid, self._call, limit=self._limit)
            await hub.open(conn, dom, seed or b"")
            hub.complete = seed is not None and len(seed) < self._limit
            old, self._hubs[name] = self._hubs.get(name), hub
            if old is not None:
                await old.close()
            return hub

    async def drop(self, name: str) -> None:
        """Close and forget the hub of ``name`` (its guest is being removed)."""
        hub = self._hubs.pop(name, None)
        lock = self._locks.get(name)
        if lock is not None and not lock.locked():
            del self._locks[name]
        if hub is not None:
            await hub.close()

    async def close(self) -> None:
        for name in list(self._hubs):
            await self.drop(name)


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
        self._conn: libvirt.virConnect | None = None
        self._dom: libvirt.virDomain | None = None
        self._changed = asyncio.Event()
        self._paused = False
        self._ending = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        #: Why the stream ended: "" or TAKEN (another viewer holds the console now).
        self.ended_reason = ""
        #: True when the buffer holds everything since the guest booted.
        self.complete = False

    @property
    def usable(self) -> bool:
        """Open and not ending: a new viewer may attach."""
        return not self.closed and not self._ending

    # --- life cycle ---------------------------------------------------------

    async def open(self, conn: libvirt.virConnect, dom: libvirt.virDomain, seed: bytes) -> None:
        """Take the console (from any holder) and start reading; ``seed`` is earlier output."""
        self._append(seed)
        self._conn, self._dom = conn, dom
        opening = asyncio.ensure_future(self._call(_open_console, conn, dom, self.name))
        try:
            stream = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The open runs on in its thread; release what it opens rather than leak it.
            opening.add_done_callback(self._abort_late_stream)
            raise
        self._stream = stream
        stream.eventAddCallback(_EVENTS_READ, self._on_event, None)
        log.info("console of %s attached", self.name)

    def _abort_late_stream(self, opening: asyncio.Future[libvirt.virStream]) -> None:
        if not opening.cancelled() and opening.exception() is None:
            self._spawn(self._abort(opening.result()))

    async def close(self) -> None:
        """Stop reading and release the stream; viewers then read ``b""``."""
        if not self.closed:
            self._mark_closed()
        await self._release()

    async def _release(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        with contextlib.suppress(libvirt.libvirtError):
            stream.eventRemoveCallback()
        await self._abort(stream)
        log.info("console of %s released", self.name)

    async def _abort(self, stream: libvirt.virStream) -> None:
        try:
            await self._call(stream.abort)
        except Exception as exc:  # a dead stream or connection: nothing left to release
            log.debug("console of %s: abort: %s", self.name, exc)

    def _mark_closed(self) -> None:
        self.closed = True
        self._changed.set()
        for viewer in self._viewers:
            viewer.wake()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- reading (on the loop, called by libvirt) ---------------------------

    def _on_event(self, stream: libvirt.virStream, events: int, _opaque: object) -> None:
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            self._drain(stream)
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self._finish("hang-up")

    def _drain(self, stream: libvirt.virStream) -> None:
        while not self._paused and self.usable:
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
        """The stream ended by itself: find out why, then tell the viewers."""
        if self.usable:
            log.info("console of %s ended (%s)", self.name, why)
            self._ending = True
            self._spawn(self._end())

    async def _end(self) -> None:
        await self._release()
        if self._conn is not None and self._dom is not None:
            try:
                if await self._call(_held_elsewhere, self._conn, self._dom):
                    self.ended_reason = TAKEN
                    log.info("console of %s was taken over by another viewer", self.name)
            except Exception as exc:  # the connection is gone too: an ordinary end
                log.debug("console of %s: cannot tell who holds it: %s", self.name, exc)
        self._mark_closed()

    def _pause(self, paused: bool) -> None:
        if paused == self._paused or self._stream is None or not self.usable:
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
        if stream is None or not self.usable:
            raise ConnectionError("the console is closed")
        await self._call(_send_all, stream, data)


def _open_console(conn: libvirt.virConnect, dom: libvirt.virDomain, name: str) -> libvirt.virStream:
    """A new stream on the guest's console: without FORCE if nobody holds it, else with."""
    stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
    try:
        dom.openConsole(None, stream, 0)
        return stream
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_FAILED or starting_up(dom):
            raise
    stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)  # a failed open spoils a stream
    dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
    log.info("console of %s: took it over from another viewer", name)
    return stream


def _held_elsewhere(conn: libvirt.virConnect, dom: libvirt.virDomain) -> bool:
    """Whether another stream holds the guest's console now (tried without FORCE)."""
    stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
    try:
        dom.openConsole(None, stream, 0)
    except libvirt.libvirtError as exc:
        # Busy is OPERATION_FAILED (as is "no PTY yet" while QEMU starts); a guest that is
        # not running is OPERATION_INVALID.
        busy = exc.get_error_code() == libvirt.VIR_ERR_OPERATION_FAILED
        return busy and not starting_up(dom)
    stream.abort()  # nobody held it: let go of it at once
    return False


def _send_all(stream: libvirt.virStream, data: bytes) -> None:
    view = memoryview(data)
    while view:
        sent = stream.send(bytes(view[:65536]))
        if sent == -2:  # the stream's queue is full: rare, and only for a moment
            time.sleep(0.01)
            continue
        view = view[sent:]


class ConsoleTerminal:
    """One viewer of a guest's serial console (``provisioning.base.Terminal``).

    ``ended_reason`` is ``""`` while it runs and after an ordinary end, and
    :data:`TAKEN` once another viewer took the console over (then ``read()`` returns
    ``b""``: do not reconnect automatically; see the module docstring)."""

    def __init__(self, hub: ConsoleHub, resize: ResizeFn, *, replay: bytes) -> None:
        self.replay = replay
        self._hub = hub
        self._resize = resize
        self._pending = bytearray()
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def ended_reason(self) -> str:
        return self._hub.ended_reason if self._hub.closed else ""

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
        if self._closed or not self._hub.usable:
            return
        applying = asyncio.ensure_future(self._resize(cols, rows))
        applying.add_done_callback(lambda done: done.cancelled() or done.exception())
        await asyncio.wait({applying}, timeout=RESIZE_WAIT)

    async def close(self) -> None:
        self._closed = True
        self._ready.set()
        self._hub.detach(self)
