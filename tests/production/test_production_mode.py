"""Production mode for real: PostgreSQL, the Redis channel layer, two Daphne processes and a
separate reconciler, all configured by environment variables (started by bin/test)."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import docker
import psycopg
import pytest
import websockets

from tests.conftest import FIXTURE_CONTENT, PASSWORD, PRODUCTION_SITE
from tests.docker.conftest import remove_test_sandboxes
from tests.livesite import MANAGE, ROOT, free_port, prepare, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.docker]
PG = "postgresql://labsite:labsite@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6390/5"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    name = f"labsite_test_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    var = tmp_path_factory.mktemp("prod-var")
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{name}",
        "REDIS_URL": REDIS,
        "SECRET_KEY": secrets.token_urlsafe(40),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LABSITE_VAR_DIR": str(var),
        "LABSITE_CONTENT_DIR": str(FIXTURE_CONTENT),
        "LABSITE_SITE_NAME": PRODUCTION_SITE,
        "LABSITE_RECONCILE_SECONDS": "2",
        "DJANGO_SETTINGS_MODULE": "labsite.settings",
    }
    prepare(env, ["collectstatic", "--noinput", "-v0"])
    ports = [free_port(), free_port()]
    log = open(var / "processes.log", "w")
    daphne = str(Path(sys.executable).parent / "daphne")
    processes = [
        subprocess.Popen(
            [daphne, "-b", "127.0.0.1", "-p", str(p), "labsite.asgi:application"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        for p in ports
    ]
    processes.append(
        subprocess.Popen(
            [*MANAGE, "reconcile", "--backend", "docker"], env=env, cwd=ROOT, stdout=log, stderr=log
        )
    )
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    for url, process in zip(urls, processes, strict=False):
        wait_for(url + "/accounts/login/", process, var / "processes.log")
    yield urls
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=15)
    log.close()
    remove_test_sandboxes(docker.from_env(), PRODUCTION_SITE)
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


class Browser:
    """Cookies and CSRF like a browser, against one of the Daphne processes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def login(self) -> None:
        page = self.opener.open(self.url + "/accounts/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        body = f"username=alice&password={PASSWORD}&csrfmiddlewaretoken={token}".encode()
        self.opener.open(urllib.request.Request(self.url + "/accounts/login/", data=body))

    def post(self, path: str) -> dict:
        request = urllib.request.Request(
            self.url + path,
            data=b"",
            headers={
                "X-CSRFToken": self.cookie("csrftoken"),
                "Referer": self.url + "/",
            },
        )
        return json.loads(self.opener.open(request).read())

    def get(self, path: str) -> dict:
        return json.loads(self.opener.open(self.url + path).read())

    def ws_headers(self) -> dict:
        return {"Origin": self.url, "Cookie": f"sessionid={self.cookie('sessionid')}"}


def test_two_daphne_processes_share_sessions_terminals_and_events(cluster):
    first, second = Browser(cluster[0]), Browser(cluster[1])
    first.login()
    first.opener.open(first.url + "/courses/testcourse/basics/labs/hello/")
    second.jar = first.jar  # the same student, load-balanced to the other process
    second.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(first.jar))
    lab_id = next(lab["id"] for lab in first.get("/api/labs/")["labs"] if lab["slug"] == "hello")
    session = first.post(f"/api/labs/{lab_id}/sessions/")
    for _ in range(100):
        if second.get(f"/api/sessions/{session['id']}/")["state"] == "running":
            break
        time.sleep(0.2)
    else:
        pytest.fail("the session never ran")
    asyncio.run(_terminal_and_events(first, second, session["id"]))


async def _terminal_and_events(first: Browser, second: Browser, session_id: str) -> None:
    ws_base = second.url.replace("http", "ws")
    async with websockets.connect(
        f"{ws_base}/ws/sessions/{session_id}/terminals/1/", additional_headers=second.ws_headers()
    ) as terminal:
        await terminal.send(b"echo via-second-$((20+3))\r")
        seen = b""
        while b"via-second-23" not in seen:
            frame = await asyncio.wait_for(terminal.recv(), 10)
            seen += frame if isinstance(frame, bytes) else b""
    events_base = first.url.replace("http", "ws")
    async with websockets.connect(
        f"{events_base}/ws/sessions/{session_id}/events/", additional_headers=first.ws_headers()
    ) as events:
        hello = json.loads(await asyncio.wait_for(events.recv(), 10))
        assert hello["session"]["state"] == "running"
        await asyncio.to_thread(second.post, f"/api/sessions/{session_id}/stop/")
        states = set()
        while "stopped" not in states:
            message = json.loads(await asyncio.wait_for(events.recv(), 20))
            if message["type"] == "session":
                states.add(message["session"]["state"])
    # The events came from the other process, through Redis.
    assert "stopped" in states
