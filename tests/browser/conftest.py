"""A live site for the browser: ``manage.py runsite`` (Daphne + reconciler) in a child
process with its own SQLite file, the test course, and the test site label."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_CONTENT, LIVE_SITE
from tests.livesite import MANAGE, ROOT, free_port, prepare, wait_for

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


#: The browsers of the lab room are set to Chinese (Accept-Language: zh-CN): the site's
#: default page fixture is such a browser. Chromium's own default would ask for English.
LAB_ROOM_LOCALE = "zh-CN"


@pytest.fixture(scope="session")
def live_env(tmp_path_factory) -> dict:
    """The environment of the live site's processes (its settings), for ``manage.py`` calls."""
    var = tmp_path_factory.mktemp("site-var")
    return {
        **os.environ,
        "LABSITE_VAR_DIR": str(var),
        "LABSITE_CONTENT_DIR": str(FIXTURE_CONTENT),
        "LABSITE_SITE_NAME": LIVE_SITE,
        "DJANGO_SETTINGS_MODULE": "labsite.settings",
    }


@pytest.fixture(scope="session")
def live_site(live_env):
    var = Path(live_env["LABSITE_VAR_DIR"])
    port = free_port()
    prepare(live_env)
    log_path = var / "runsite.log"
    log = open(log_path, "w")
    server = subprocess.Popen(
        [*MANAGE, "runsite", "--port", str(port)], env=live_env, cwd=ROOT, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/accounts/login/", server, log_path)
    yield url
    server.terminate()
    server.wait(timeout=10)
    log.close()


def manage_shell(env: dict, script: str) -> str:
    """Run Python in the live site's Django (``manage.py shell -c``); its stdout."""
    done = subprocess.run(
        [*MANAGE, "shell", "-c", script], env=env, cwd=ROOT, check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    return done.stdout


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
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=LAB_ROOM_LOCALE)
    page = context.new_page()
    yield page
    page.screenshot(path=str(tmp_path / "last.png"))
    context.close()
