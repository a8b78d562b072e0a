"""libvirt's event loop on asyncio, safe for calls from the backend's worker threads.

``libvirtaio`` drives libvirt's file-descriptor watches and timers from an
asyncio loop, so console streams are read by the loop itself (no thread per
terminal). But libvirt calls its add/update/remove hooks from whichever thread
makes a libvirt call, and the backend makes its blocking calls in an executor;
libvirtaio would then touch the loop from those threads, which asyncio forbids.
:class:`LoopSafeImpl` hands every such change to the loop with
``call_soon_threadsafe``, in order, and returns watch ids at once as libvirt
expects.

libvirt accepts one event implementation per process, for the life of the
process. :func:`ensure_registered` registers it on the running loop; when a
later caller runs another loop and the first one has stopped (a test suite
with a loop per test), the watches and timers move to the new loop. Two loops
running at once in one process cannot both drive libvirt: that is refused.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import libvirtaio

log = logging.getLogger(__name__)
_ids = itertools.count(1_000_000)


class LoopSafeImpl(libvirtaio.virEventAsyncIOImpl):  # type: ignore[misc]
    """libvirtaio with every change to watches and timers applied on the loop."""

    loop: asyncio.AbstractEventLoop
    _parked: list[tuple[Any, tuple[Any, ...]]] | None = None

    def _defer(self, func: Any, *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(func, *args)
        except RuntimeError:  # the loop is closed: apply it on the next one (rebind)
            if self._parked is None:
                self._parked = []
            self._parked.append((func, args))

    def rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Move every watch and timer to ``loop`` (called on ``loop``; the old one stopped)."""
        old, self.loop = self.loop, loop
        for callback in list(self.callbacks.values()):
            if isinstance(callback, libvirtaio.TimeoutCallback):
                callback._task = None  # it belonged to the old loop
                callback.update(timeout=callback.timeout)
        for fd, descriptor in list(self.descriptors.items()):
            if not old.is_closed():
                old.remove_reader(fd)
                old.remove_writer(fd)
            try:
                descriptor.update()
            except (OSError, ValueError) as exc:
                log.warning("libvirt watch on fd %d not moved to the new loop: %s", fd, exc)
        parked, self._parked = self._parked or [], None
        for func, args in parked:
            func(*args)

    def _add_handle(self, fd: int, event: int, cb: Any, opaque: Any) -> int:
        iden = next(_ids)
        self._defer(self._do_add_handle, iden, fd, event, cb, opaque)
        return iden

    def _do_add_handle(self, iden: int, fd: int, event: int, cb: Any, opaque: Any) -> None:
        callback = libvirtaio.FDCallback(
            self, cb, opaque, descriptor=self.descriptors[fd], event=event
        )
        callback.iden = iden
        self.callbacks[iden] = callback
        self.descriptors[fd].add_handle(callback)
        self._pending_inc()

    def _update_handle(self, watch: int, event: int) -> None:
        self._defer(self._do_update, watch, event, super()._update_handle)

    def _remove_handle(self, watch: int) -> int:
        self._defer(self._do_remove, watch, super()._remove_handle)
        return 0

    def _add_timeout(self, timeout: int, cb: Any, opaque: Any) -> int:
        iden = next(_ids)
        self._defer(self._do_add_timeout, iden, timeout, cb, opaque)
        return iden

    def _do_add_timeout(self, iden: int, timeout: int, cb: Any, opaque: Any) -> None:
        callback = libvirtaio.TimeoutCallback(self, cb, opaque)
        callback.iden = iden
        self.callbacks[iden] = callback
        callback.update(timeout=timeout)
        self._pending_inc()

    def _update_timeout(self, timer: int, timeout: int) -> None:
        self._defer(self._do_update, timer, timeout, super()._update_timeout)

    def _remove_timeout(self, timer: int) -> int:
        self._defer(self._do_remove, timer, super()._remove_timeout)
        return 0

    def _do_update(self, iden: int, value: int, update: Any) -> None:
        if iden in self.callbacks:
            update(iden, value)

    def _do_remove(self, iden: int, remove: Any) -> None:
        if iden in self.callbacks:
            remove(iden)


def ensure_registered() -> None:
    """Register libvirt's event implementation on the running loop (once per process)."""
    loop = asyncio.get_running_loop()
    current = libvirtaio.getCurrentImpl()
    if current is None:
        libvirtaio._current_impl = LoopSafeImpl(loop=loop).register()
    elif current.loop is not loop:
        if not isinstance(current, LoopSafeImpl) or current.loop.is_running():
            raise RuntimeError("libvirt's events are driven by another running asyncio loop")
        current.rebind(loop)
