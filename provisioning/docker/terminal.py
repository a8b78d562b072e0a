"""A terminal tab in a container: a tmux client started by exec, bridged on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class DockerTerminal:
    """Implements ``provisioning.base.Terminal`` for one exec running ``tmux attach``."""

    def __init__(
        self,
        *,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        replay: bytes,
        resize: Callable[[int, int], Awaitable[None]],
        detach: Callable[[], Awaitable[None]],
    ) -> None:
        self.replay = replay
        self.ended_reason = ""  # a tmux tab can be shared: nobody takes it from another
        self._reader = reader
        self._writer = writer
        self._resize = resize
        self._detach = detach
        self._closed = False

    async def read(self, max_bytes: int = 65536) -> bytes:
        if self._closed:
            return b""
        try:
            return await self._reader.read(max_bytes)
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        if self._closed or self._writer.is_closing():
            return
        self._writer.write(data)
        await self._writer.drain()

    async def resize(self, *, cols: int, rows: int) -> None:
        if not self._closed:
            await self._resize(cols, rows)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            # Closing the socket alone would leave the tmux client (and the exec) running.
            await self._detach()
        except Exception:  # the sandbox may already be gone; nothing is left to detach
            log.debug("detach failed", exc_info=True)
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
