"""The output of a non-TTY exec, read on the event loop.

Without a TTY the engine multiplexes stdout and stderr: each frame is an 8-byte header
(stream id, three zero bytes, a big-endian 32-bit length) and that many bytes. Both
streams are kept, in order, as a student would see them in a terminal.
"""

from __future__ import annotations

import asyncio
import struct

#: A check's output beyond this is dropped (only the tail is shown anyway).
MAX_OUTPUT = 256 * 1024


async def read_exec_output(reader: asyncio.StreamReader, limit: int = MAX_OUTPUT) -> bytes:
    """Every frame until the exec ends; keeps the last ``limit`` bytes."""
    chunks = bytearray()
    while True:
        try:
            header = await reader.readexactly(8)
        except asyncio.IncompleteReadError:
            return bytes(chunks[-limit:])
        (length,) = struct.unpack(">L", header[4:])
        try:
            chunks += await reader.readexactly(length)
        except asyncio.IncompleteReadError as partial:
            chunks += partial.partial
            return bytes(chunks[-limit:])
        if len(chunks) > 2 * limit:
            del chunks[:-limit]
