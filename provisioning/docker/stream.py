"""An exec's TTY as asyncio streams: the HTTP upgrade done by hand on the event loop.

The docker SDK can only hand back a blocking socket (and may have buffered the first
bytes inside its HTTP response); doing the upgrade here keeps every terminal on the
event loop with no thread of its own, and the stream reader's buffer limit gives us
back-pressure for free: while nobody reads, the engine's socket is not read either.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlparse

#: Bytes the reader buffers before it stops reading from the engine's socket.
READ_BUFFER = 64 * 1024


class HijackError(ConnectionError):
    pass


async def open_exec_stream(
    base_url: str, api_version: str, exec_id: str, *, tty: bool = True
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await _connect(base_url)
    body = json.dumps({"Detach": False, "Tty": tty}).encode()
    request = (
        f"POST /v{api_version}/exec/{exec_id}/start HTTP/1.1\r\n"
        "Host: docker\r\n"
        "Content-Type: application/json\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: tcp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    writer.write(request)
    await writer.drain()
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        writer.close()
        raise HijackError("the engine closed the exec stream during the upgrade") from exc
    status = head.split(b"\r\n", 1)[0].split(b" ")
    if len(status) < 2 or status[1] not in (b"101", b"200"):
        writer.close()
        raise HijackError(f"exec start refused: {head[:200]!r}")
    return reader, writer


async def _connect(base_url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = urlparse(base_url)
    if url.scheme in ("unix", "http+unix"):
        return await asyncio.open_unix_connection(url.path, limit=READ_BUFFER)
    if url.scheme in ("tcp", "http"):
        return await asyncio.open_connection(url.hostname, url.port or 2375, limit=READ_BUFFER)
    raise HijackError(f"terminal streams need a unix:// or tcp:// engine address, not {base_url}")
