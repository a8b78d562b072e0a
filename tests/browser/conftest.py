"""A live site for the browser: ``manage.py runsite`` (Daphne + reconciler) in a child
process with its own SQLite file, the test course, and the test site label."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_CONTENT, PASSWORD, TEST_SITE

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_site(tmp_path_factory):
    var = tmp_path_factory.mktemp("site-var")
    port = _free_port()
    env = {
        **os.environ,
        "LABSITE_VAR_DIR": str(var),
        "LABSITE_CONTENT_DIR": str(FIXTURE_CONTENT),
        "LABSITE_SITE_NAME": TEST_SITE,
        "DJANGO_SETTINGS_MODULE": "labsite.settings",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    for args in (["migrate", "-v0"], ["load_content"]):
        subprocess.run(manage + args, env=env, check=True, capture_output=True, cwd=ROOT)
    script = (
        "from django.contrib.auth import get_user_model;"
        "from apps.accounts.roles import assign_role, Role;"
        f"u = get_user_model().objects.create_user('alice', password='{PASSWORD}');"
        "assign_role(u, Role.STUDENT)"
    )
    subprocess.run([*manage, "shell", "-c", script], env=env, check=True, cwd=ROOT)
    log = open(var / "runsite.log", "w")
    server = subprocess.Popen(
        [*manage, "runsite", "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/accounts/login/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        server.kill()
        raise RuntimeError((var / "runsite.log").read_text())
    yield url
    server.terminate()
    server.wait(timeout=10)
    log.close()


@pytest.fixture(scope="module")
def browser():
    # Module scope: Playwright's sync API marks an event loop as running in this thread
    # while it is open, which would break the asyncio tests that run after this module.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    page.screenshot(path=str(tmp_path / "last.png"))
    context.close()
