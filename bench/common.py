"""Shared plumbing for the benchmarks: a live site in a subprocess, its JSON API, the
three terminal clients (our WebSocket bridge, terminado, a direct Docker exec) and the
measuring helpers. Only 127.0.0.1 and the local Docker Engine are ever contacted.

Nothing here asserts anything about timings: benchmarks print figures, tests judge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import connect as ws_connect

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
if not Path(PYTHON).exists():
    PYTHON = sys.executable
FIXTURE_CONTENT = ROOT / "tests" / "fixtures" / "content"
#: Every sandbox the bench site makes carries ``labsite.site=<this>``; cleanup removes
#: exactly those and nothing else.
SITE_NAME = "labsite-bench"
LAB_SLUG = "hello"
PASSWORD = "bench-correct-horse-9"  # noqa: S105 (a throwaway site's user)
LABEL_SITE = "labsite.site"
DOCKER_URL = "unix:///var/run/docker.sock"

# Mirrors of apps/terminals/protocol.py and frontend/src/flow.js (the browser's budgets).
ACK_EVERY = 16 * 1024
CONTROL_BURST = 40  # CONTROL_BUDGET.burst = floor(INPUT_RATE_BURST * 0.1)
CONTROL_PER_SECOND = 20.0  # CONTROL_BUDGET.perSecond = INPUT_RATE_PER_SECOND * 0.2


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Docker cleanup
# --------------------------------------------------------------------------------------


def remove_site_sandboxes(site: str = SITE_NAME) -> int:
    """Force-remove every container and network labelled ``labsite.site=<site>``."""
    import docker

    client = docker.from_env()
    label = f"{LABEL_SITE}={site}"
    removed = 0
    try:
        for container in client.containers.list(all=True, filters={"label": label}):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True)
                removed += 1
        for network in client.networks.list(filters={"label": label}):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                network.remove()
    finally:
        client.close()
    return removed


def count_site_containers(site: str = SITE_NAME, *, owned_only: bool = False) -> int:
    """Containers of ``site``; with ``owned_only``, students' only (not warm pools')."""
    import docker

    from provisioning.base import LABEL_OWNER

    client = docker.from_env()
    labels = [f"{LABEL_SITE}={site}", *([LABEL_OWNER] if owned_only else [])]
    try:
        return len(client.containers.list(all=True, filters={"label": labels}))
    finally:
        client.close()


# --------------------------------------------------------------------------------------
# The live site
# --------------------------------------------------------------------------------------


@dataclass
class User:
    name: str
    token: str
    cookie: str  # Django session id (logged in)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_USERS_SCRIPT = """
import json
from importlib import import_module
from django.conf import settings
from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
from apps.accounts.models import ApiToken
from apps.accounts.roles import Role, assign_role
Store = import_module(settings.SESSION_ENGINE).SessionStore
out = []
for i in range({count}):
    name = "bench%02d" % i
    # Only bench00 gets a real password (it logs in through the form); hashing 50
    # passwords would cost tens of seconds for nothing.
    u = get_user_model().objects.create_user(name, password={password!r} if i == 0 else None)
    assign_role(u, Role.STUDENT)
    _row, token = ApiToken.issue(u, "bench")
    s = Store()
    s[SESSION_KEY] = str(u.pk)
    s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    s[HASH_SESSION_KEY] = u.get_session_auth_hash()
    s.save()
    out.append({{"name": name, "token": token, "cookie": s.session_key}})
print("BENCHUSERS " + json.dumps(out))
"""


class LiveSite:
    """``manage.py runsite`` (Daphne + reconciler) in a child process, own SQLite, the
    test course, site label SITE_NAME; ``users`` students with API tokens and cookies."""

    def __init__(self, users: int = 1, extra_env: dict[str, str] | None = None) -> None:
        self.n_users = users
        self.extra_env = extra_env or {}
        self.var: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.users: list[User] = []
        self._log = None
        #: What serves the site; ``--port N`` is appended (an experiment may wrap runsite).
        self.server_command: list[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return self.url

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def env(self) -> dict[str, str]:
        assert self.var is not None
        env = {
            **os.environ,
            "LABSITE_VAR_DIR": str(self.var),
            "LABSITE_CONTENT_DIR": str(FIXTURE_CONTENT),
            "LABSITE_SITE_NAME": SITE_NAME,
            "DJANGO_SETTINGS_MODULE": "labsite.settings",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        env.update(self.extra_env)
        return env

    def manage(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            [PYTHON, str(ROOT / "manage.py"), *args], env=self.env(), cwd=ROOT,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def boot(self) -> LiveSite:
        self.var = Path(tempfile.mkdtemp(prefix="labsite-bench-"))
        self.port = free_port()
        self.manage("migrate", "-v0")
        self.manage("load_content")
        out = self.manage(
            "shell", "-c", _USERS_SCRIPT.format(count=self.n_users, password=PASSWORD)
        )
        line = next(ln for ln in out.splitlines() if ln.startswith("BENCHUSERS "))
        self.users = [User(**row) for row in json.loads(line.split(" ", 1)[1])]
        self._log = open(self.var / "runsite.log", "w")
        command = self.server_command or [PYTHON, str(ROOT / "manage.py"), "runsite"]
        self.proc = subprocess.Popen(
            [*command, "--port", str(self.port)],
            env=self.env(), cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                urllib.request.urlopen(self.url + "/accounts/login/", timeout=1)
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the site did not come up; see its log")

    def threads(self) -> int:
        """Threads: of the site process (from /proc)."""
        text = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(r"^Threads:\s+(\d+)", text, re.M).group(1))

    def log_tail(self, n: int = 30) -> str:
        if self.var is None or not (self.var / "runsite.log").exists():
            return ""
        return "\n".join((self.var / "runsite.log").read_text().splitlines()[-n:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.var is not None and not os.environ.get("BENCH_KEEP_VAR"):
            shutil.rmtree(self.var, ignore_errors=True)


def login_form(site: LiveSite, username: str, password: str) -> str:
    """Log in through /accounts/login/ as a browser would; return the ``sessionid``."""
    import requests

    with requests.Session() as http:
        page = http.get(site.url + "/accounts/login/", timeout=10)
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert match, "no CSRF token on the login page"
        done = http.post(
            site.url + "/accounts/login/",
            data={"username": username, "password": password,
                  "csrfmiddlewaretoken": match.group(1)},
            headers={"Referer": site.url + "/accounts/login/"},
            allow_redirects=False, timeout=10,
        )  # fmt: skip
        cookie = done.cookies.get("sessionid") or http.cookies.get("sessionid")
        if done.status_code != 302 or not cookie:
            raise RuntimeError(f"login failed: {done.status_code}")
        return cookie


# --------------------------------------------------------------------------------------
# A tiny asyncio HTTP/1.1 client (no thread pool in the way of 50 concurrent requests)
# --------------------------------------------------------------------------------------


async def http(
    method: str, url: str, *, token: str | None = None, body=None, timeout: float = 30
) -> tuple[int, object]:
    parts = urlsplit(url)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(parts.hostname, parts.port), timeout
    )
    try:
        data = json.dumps(body).encode() if body is not None else b""
        head = [
            f"{method} {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1",
            f"Host: {parts.hostname}:{parts.port}",
            "Connection: close",
            "Accept: application/json",
            f"Content-Length: {len(data)}",
        ]
        if body is not None:
            head.append("Content-Type: application/json")
        if token:
            head.append(f"Authorization: Token {token}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    header, _, payload = raw.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in header.lower():
        payload = _dechunk(payload)
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload[:300]


def _dechunk(data: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2


class Api:
    """The JSON API with a personal token (Authorization: Token …)."""

    def __init__(self, site: LiveSite, user: User) -> None:
        self.site, self.user = site, user

    async def call(self, method: str, path: str, body=None, timeout: float = 30):
        status, data = await http(
            method, self.site.url + path, token=self.user.token, body=body, timeout=timeout
        )
        if status >= 400:
            raise RuntimeError(f"{method} {path} -> {status}: {data}")
        return data

    async def lab_id(self, slug: str = LAB_SLUG) -> int:
        labs = (await self.call("GET", "/api/labs/"))["labs"]
        return next(lab["id"] for lab in labs if lab["slug"] == slug)

    async def start(self, lab_id: int) -> dict:
        return await self.call("POST", f"/api/labs/{lab_id}/sessions/", body={})

    async def get(self, session_id: str) -> dict:
        return await self.call("GET", f"/api/sessions/{session_id}/")

    async def stop(self, session_id: str) -> dict:
        return await self.call("POST", f"/api/sessions/{session_id}/stop/", body={})

    async def wait_state(
        self, session_id: str, states=("running",), timeout: float = 60, every: float = 0.1
    ) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            session = await self.get(session_id)
            if session["state"] in states:
                return session
            if session["state"] == "failed":
                raise RuntimeError(f"session failed: {session['failure_message']}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"session still {session['state']} after {timeout}s")
            await asyncio.sleep(every)


async def start_running_session(site: LiveSite, user: User, lab_id: int) -> dict:
    """Start through the API and poll until the session runs (what a script would do)."""
    api = Api(site, user)
    session = await api.start(lab_id)
    return await api.wait_state(session["id"])


async def stop_sessions(site: LiveSite, pairs, timeout: float = 60) -> None:
    """Stop (user, session_id) pairs through the API and wait until they ended."""
    pairs = list(pairs)

    async def one(user, sid):
        api = Api(site, user)
        with contextlib.suppress(Exception):
            await api.stop(sid)
        with contextlib.suppress(Exception):
            await api.wait_state(sid, ("stopped", "expired", "failed"), timeout=timeout, every=0.2)

    await asyncio.gather(*(one(u, s) for u, s in pairs))


# --------------------------------------------------------------------------------------
# Terminal clients: one interface for the three paths
# --------------------------------------------------------------------------------------


class TokenBucket:
    def __init__(self, burst: float, per_second: float) -> None:
        self.burst, self.per_second = burst, per_second
        self.tokens, self.last = float(burst), time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.per_second)
        self.last = now

    def take(self) -> bool:
        self._refill()
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def delay(self) -> float:
        self._refill()
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.per_second


class Closed(Exception):
    pass


class TermClient:
    """recv() returns the next chunk of output bytes; consumed(n) says the reader has
    processed n bytes (only our bridge cares: it turns that into acknowledgements)."""

    name = "?"
    chunks = 0

    async def recv(self, timeout: float) -> bytes:
        raise NotImplementedError

    async def consumed(self, n: int) -> None:
        return None

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class OursClient(TermClient):
    """Our bridge, acknowledging like the lab page: xterm.js's write callback fires →
    AckBatcher (whole multiples of ACK_EVERY) → ControlQueue (token bucket
    CONTROL_BURST / CONTROL_PER_SECOND, acknowledgements coalesced while waiting)."""

    name = "ours"

    def __init__(self, ws) -> None:
        self.ws = ws
        self.controls: list[dict] = []
        self.bucket = TokenBucket(CONTROL_BURST, CONTROL_PER_SECOND)
        self.to_ack = 0
        self.acks_sent = 0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task | None = None
        self.close_code: int | None = None

    @classmethod
    async def open(
        cls, site: LiveSite, session_id: str, cookie: str, tab: int = 1,
        cols: int = 80, rows: int = 24, timeout: float = 15,
    ) -> OursClient:  # fmt: skip
        uri = (
            f"ws://127.0.0.1:{site.port}/ws/sessions/{session_id}/terminals/{tab}/"
            f"?cols={cols}&rows={rows}"
        )
        ws = await ws_connect(
            uri, origin=site.origin, additional_headers={"Cookie": f"sessionid={cookie}"},
            compression=None, max_size=None, ping_interval=None, open_timeout=timeout,
        )  # fmt: skip
        client = cls(ws)
        client.pre_attach = b""
        deadline = time.monotonic() + timeout
        # Replay bytes may come first; the "attached" status says live output follows.
        while not any(c.get("state") == "attached" for c in client.controls):
            msg = await client._recv_raw(deadline - time.monotonic())
            if isinstance(msg, bytes):
                client.pre_attach += msg
                await client.consumed(len(msg))
        return client

    async def _recv_raw(self, timeout: float):
        try:
            msg = await asyncio.wait_for(self.ws.recv(), max(0.001, timeout))
        except websockets.ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd else None
            raise Closed(f"ours: socket closed ({self.close_code})") from exc
        if isinstance(msg, str):
            self.controls.append(json.loads(msg))
        return msg

    async def recv(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            msg = await self._recv_raw(deadline - time.monotonic())
            if isinstance(msg, bytes):
                self.chunks += 1
                return msg

    async def consumed(self, n: int) -> None:
        # Like AckBatcher.written(): only whole batches of ACK_EVERY bytes are acknowledged,
        # a smaller remainder waits for the next batch; the ControlQueue may hold them.
        self.pending_batch = getattr(self, "pending_batch", 0) + n
        if self.pending_batch >= ACK_EVERY:
            self.to_ack += self.pending_batch
            self.pending_batch = 0
            await self._flush()

    async def _flush(self) -> None:
        if self.to_ack <= 0:
            return
        if self.bucket.take():
            n, self.to_ack = self.to_ack, 0
            self.acks_sent += 1
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.ws.send(json.dumps({"type": "ack", "bytes": n}))
        elif self._flush_handle is None:
            loop = asyncio.get_running_loop()

            def fire() -> None:
                self._flush_handle = None
                self._flush_task = loop.create_task(self._flush())

            self._flush_handle = loop.call_later(self.bucket.delay() + 0.001, fire)

    async def send(self, data: bytes) -> None:
        await self.ws.send(data)

    async def resize(self, cols: int, rows: int) -> None:
        await self.ws.send(json.dumps({"type": "resize", "cols": cols, "rows": rows}))

    async def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)


class TerminadoClient(TermClient):
    """terminado's JSON protocol: ["stdin", s] up, ["stdout", s] / ["setup"] down."""

    name = "terminado"

    def __init__(self, ws) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, port: int, cols: int = 80, rows: int = 24) -> TerminadoClient:
        ws = await ws_connect(
            f"ws://127.0.0.1:{port}/websocket", compression=None, max_size=None,
            ping_interval=None, open_timeout=15,
        )  # fmt: skip
        client = cls(ws)
        await ws.send(json.dumps(["set_size", rows, cols]))
        return client

    async def recv(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = await asyncio.wait_for(
                    self.ws.recv(), max(0.001, deadline - time.monotonic())
                )
            except websockets.ConnectionClosed as exc:
                raise Closed("terminado: socket closed") from exc
            kind, *rest = json.loads(msg)
            if kind == "stdout":
                self.chunks += 1
                return rest[0].encode("utf-8", "surrogateescape")
            if kind == "disconnect":
                raise Closed("terminado: terminal died")

    async def send(self, data: bytes) -> None:
        await self.ws.send(json.dumps(["stdin", data.decode("utf-8", "surrogateescape")]))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)


class DirectExecClient(TermClient):
    """The floor: a Docker API exec (docker SDK: exec_create tty+stdin, exec_start with
    socket=True), the hijacked socket read and written directly on the event loop."""

    name = "direct"

    def __init__(self, api, exec_id: str, sock, raw) -> None:
        self.api, self.exec_id, self._sock, self.raw = api, exec_id, sock, raw

    @classmethod
    async def open(
        cls, container: str, command: list[str], cols: int = 80, rows: int = 24
    ) -> DirectExecClient:
        import docker

        def make():
            api = docker.APIClient(base_url=DOCKER_URL, version="auto", timeout=60)
            created = api.exec_create(
                container, command, stdin=True, tty=True,
                environment={"TERM": "xterm-256color", "LANG": "C.UTF-8"},
            )  # fmt: skip
            sock = api.exec_start(created["Id"], tty=True, socket=True)
            raw = getattr(sock, "_sock", sock)
            raw.setblocking(False)
            api.exec_resize(created["Id"], height=rows, width=cols)
            return api, created["Id"], sock, raw

        return cls(*(await asyncio.to_thread(make)))

    async def recv(self, timeout: float) -> bytes:
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.raw, 65536), max(0.001, timeout))
        if not data:
            raise Closed("direct: exec stream ended")
        self.chunks += 1
        return data

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.raw, data)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()
        with contextlib.suppress(Exception):
            self.api.close()


# --------------------------------------------------------------------------------------
# Measuring helpers
# --------------------------------------------------------------------------------------


class Timeout(Exception):
    pass


async def read_until(
    term: TermClient, needle: bytes, timeout: float, rate: float | None = None
) -> tuple[int, float]:
    """Consume output until ``needle`` appears; return (bytes read, time it was consumed).

    ``rate`` (bytes/s) models a slow reader (a busy browser tab): each chunk takes
    len/rate seconds to process, and only then are its bytes reported as consumed."""
    start = time.perf_counter()
    deadline = start + timeout
    tail, total = b"", 0
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise Timeout(f"{term.name}: {needle!r} not seen after {timeout}s")
        try:
            chunk = await term.recv(remaining)
        except TimeoutError:
            raise Timeout(f"{term.name}: {needle!r} not seen after {timeout}s") from None
        total += len(chunk)
        window = tail + chunk
        if rate:  # processing this chunk takes len/rate seconds
            await asyncio.sleep(len(chunk) / rate)
        seen = time.perf_counter()
        await term.consumed(len(chunk))
        if needle in window:
            return total, seen
        tail = window[-len(needle) :]


async def drain(term: TermClient, quiet: float = 0.15, limit: float = 5.0) -> int:
    """Read until the terminal has been silent for ``quiet`` seconds."""
    total, end = 0, time.perf_counter() + limit
    while time.perf_counter() < end:
        try:
            chunk = await term.recv(quiet)
        except TimeoutError:
            return total
        total += len(chunk)
        await term.consumed(len(chunk))
    return total


_marker = [100]


def sentinel() -> tuple[bytes, bytes]:
    """A command fragment and the output it produces: ``echo @@$((41+1))@@`` → ``@@42@@``.
    '@' is not in the base64 alphabet and the typed form never matches the output."""
    _marker[0] += 1
    n = _marker[0]
    return f"echo @@$(({n}+1))@@".encode(), f"@@{n + 1}@@".encode()


async def sync(term: TermClient, timeout: float = 10) -> None:
    """Clear the line (Ctrl-U), run an echo, wait for its output, then for silence."""
    cmd, out = sentinel()
    await term.send(b"\x15" + cmd + b"\r")
    await read_until(term, out, timeout)
    await drain(term)


def pct(values, p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def install_sigterm_as_keyboardinterrupt() -> None:
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
