"""The recordings' disk I/O, in a thread pool of their own: a slow disk delays recordings,
never a keystroke or an engine call. Files and folders are private: they hold all a student
saw in their terminal."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

READ_CHUNK = 64 * 1024

_executor: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="recordings")
    return _executor


def append(path: Path, data: bytes) -> None:
    """Blocking: runs in ``pool()``."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


async def size_of(path: Path) -> int:
    """FileNotFoundError if the file is not there."""
    loop = asyncio.get_running_loop()
    return (await loop.run_in_executor(pool(), path.stat)).st_size


async def read_chunks(path: Path, size: int) -> AsyncIterator[bytes]:
    """The first ``size`` bytes of a file, chunk by chunk off the event loop. A segment still
    being recorded grows meanwhile: what was there when it was asked for is sent. Opened
    only once iterated, so a response never sent holds no file."""
    loop = asyncio.get_running_loop()
    handle = await loop.run_in_executor(pool(), path.open, "rb")
    try:
        while size > 0:
            chunk = await loop.run_in_executor(pool(), handle.read, min(READ_CHUNK, size))
            if not chunk:
                break
            size -= len(chunk)
            yield chunk
    finally:
        handle.close()
