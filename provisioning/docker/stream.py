"""An exec's TTY as asyncio streams: the HTTP upgrade done by hand on the event loop.

The docker SDK can only hand back a blocking socket (and may have buffered the first
bytes inside its HTTP response); doing the upgrade here keeps every terminal on the
event loop with no thread of its own, and the stream reader's buffer limit gives us
back-pressure for free: while nobody reads, the engine's socket is not read either.

The engine is reached as the SDK reaches it: a unix socket, TCP (with TLS when the host
has certificates: ``ssl``), or ``ssh://`` through ``ssh … docker system dial-stdio``, the
same bridge the docker CLI uses, whose stdin and stdout are the connection.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from urllib.parse import urlparse

#: Bytes the reader buffers before it stops reading from the engine's socket.
READ_BUFFER = 64 * 1024


class HijackError(ConnectionError):
    pass


async def open_exec_stream(
    base_url: str,
    api_version: str,
    exec_id: str,
    *,
    tty: bool = True,
    tls: ssl.SSLContext | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await _connect(base_url, tls)
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


async def _connect(
    base_url: str, tls: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = urlparse(base_url)
    if url.scheme in ("unix", "http+unix"):
        return await asyncio.open_unix_connection(url.path, limit=READ_BUFFER)
    if url.scheme in ("tcp", "http", "https"):
        port = url.port or (2376 if tls else 2375)
        return await asyncio.open_connection(
            url.hostname, port, limit=READ_BUFFER, ssl=tls,
            server_hostname=url.hostname if tls else None,
        )  # fmt: skip
    if url.scheme == "ssh":
        return await _dial_stdio(url)
    raise HijackError(f"terminal streams need a unix://, tcp:// or ssh:// engine, not {base_url}")


async def _dial_stdio(url) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    target = f"{url.username}@{url.hostname}" if url.username else url.hostname
    port = ["-p", str(url.port)] if url.port else []
    process = await asyncio.create_subprocess_exec(
        "ssh", "-o", "BatchMode=yes", *port, "--", target, "docker", "system", "dial-stdio",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, limit=READ_BUFFER,
    )  # fmt: skip
    return process.stdout, process.stdin


def tls_context(ca: str, cert: str, key: str) -> ssl.SSLContext | None:
    """The client side of ``dockerd --tlsverify``: the host's CA, our certificate."""
    if not (ca or cert):
        return None
    context = ssl.create_default_context(cafile=ca or None)
    if not ca:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(cert, key or None)
    return context
