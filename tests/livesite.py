"""Helpers for tests that run the site in child processes, as a user would meet it."""

from __future__ import annotations

import http.cookiejar
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[1]
MANAGE = [sys.executable, str(ROOT / "manage.py")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(env: dict, *extra_commands: list[str]) -> None:
    """Migrate, load the content, run ``extra_commands``, and create the student alice."""
    for args in (["migrate", "-v0"], ["load_content"], *extra_commands):
        subprocess.run([*MANAGE, *args], env=env, check=True, capture_output=True, cwd=ROOT)
    create_students(env, "alice")


def create_students(env: dict, *usernames: str) -> None:
    """Students with the shared test password, in the site that ``env`` configures."""
    script = (
        "from django.contrib.auth import get_user_model;"
        "from apps.accounts.roles import assign_role, Role;"
        f"names = {list(usernames)!r};"
        f"[assign_role(get_user_model().objects.create_user(n, password='{PASSWORD}'),"
        " Role.STUDENT) for n in names]"
    )
    subprocess.run([*MANAGE, "shell", "-c", script], env=env, check=True, cwd=ROOT)


def wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{url} did not answer:\n{log.read_text()[-3000:]}")


class LiveSite:
    """``manage.py runsite`` (Daphne and the reconciler in one process) on a fixed port, which
    a test may kill and start again on the same database and var directory."""

    def __init__(self, env: dict, var: Path) -> None:
        self.env = {**env, "LABSITE_VAR_DIR": str(var)}
        self.var = var
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = var / "runsite.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [*MANAGE, "runsite", "--port", str(self.port)],
                env=self.env, cwd=ROOT, stdout=log, stderr=log,
            )  # fmt: skip
        wait_for(self.url + "/accounts/login/", self.process, self.log_path, seconds=30)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine loses power or the OOM killer
        picks the web process."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Browser:
    """Cookies and CSRF like a browser, against one site process (several may share a jar:
    the same student load-balanced to another process)."""

    def __init__(self, url: str, jar: http.cookiejar.CookieJar | None = None) -> None:
        self.url = url
        self.jar = jar if jar is not None else http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def login(self, username: str = "alice") -> None:
        page = self.opener.open(self.url + "/accounts/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        body = f"username={username}&password={PASSWORD}&csrfmiddlewaretoken={token}".encode()
        self.opener.open(urllib.request.Request(self.url + "/accounts/login/", data=body))

    def post(self, path: str) -> dict:
        status, body = self.call("POST", path)
        if status >= 400:
            raise AssertionError(f"POST {path}: {status} {body}")
        return body

    def get(self, path: str) -> dict:
        status, body = self.call("GET", path)
        if status >= 400:
            raise AssertionError(f"GET {path}: {status} {body}")
        return body

    def call(self, method: str, path: str) -> tuple[int, dict]:
        """(status, JSON body) for any status; a body that is not JSON fails the test."""
        headers = {}
        if method != "GET":
            headers = {"X-CSRFToken": self.cookie("csrftoken"), "Referer": self.url + "/"}
        request = urllib.request.Request(
            self.url + path, data=b"" if method != "GET" else None, headers=headers, method=method
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            raise AssertionError(f"{method} {path}: {status}, not JSON: {raw[:300]!r}") from None

    def ws_headers(self) -> dict:
        return {"Origin": self.url, "Cookie": f"sessionid={self.cookie('sessionid')}"}
