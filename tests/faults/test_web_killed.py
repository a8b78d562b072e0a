"""The web process is killed with SIGKILL (power loss, the OOM killer) and started again on
the same database, once while a student works in a running lab and once while a lab starts.

What a student should notice: nothing lost. A running lab is still running, with the same
shell (its variables and files) and no second container; a start that was cut off ends
running (or failed, with a reason) within the lease plus a reconciler interval, never stuck,
set up as its lab says, and pressing Start again gives that same session. The site runs in a
child process (``manage.py runsite``: Daphne and the reconciler) with its own SQLite file and
site label.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import time
import uuid

import pytest
import websockets

from apps.sessions.runner import LEASE
from provisioning.base import LABEL_SESSION
from tests.conftest import FIXTURE_CONTENT
from tests.docker.conftest import remove_test_sandboxes
from tests.faults.conftest import FAULTS_SITE
from tests.livesite import Browser, LiveSite, prepare

pytestmark = pytest.mark.docker
RECONCILE_SECONDS = 2
#: How long after the start request the process is killed: before the sandbox runs.
KILL_AFTER_START = 0.2
#: The slow-setup lab's setup.sh: what it leaves behind shows that the setup ran.
SLOW_SETUP = "sleep 1\necho done > /root/setup-done\n"


@pytest.fixture(scope="module")
def content(tmp_path_factory):
    """The test course plus ``slow-setup``: hello with a setup script that takes a second,
    so that a kill 0.1-0.3 s after Start lands before the lab runs, even on a fast machine."""
    root = tmp_path_factory.mktemp("web-killed-content") / "content"
    shutil.copytree(FIXTURE_CONTENT, root)
    labs = root / "testcourse" / "01-basics" / "labs"
    shutil.copytree(labs / "hello", labs / "slow-setup")
    lab_yaml = labs / "slow-setup" / "lab.yaml"
    lab_yaml.write_text(lab_yaml.read_text().replace("title: 你好，容器", "title: slow setup"))
    (labs / "slow-setup" / "setup.sh").write_text(SLOW_SETUP)
    return root


@pytest.fixture(scope="module")
def prepared_var(tmp_path_factory, content):
    """Migrated, with the course and alice: copied for each test (one set-up only)."""
    var = tmp_path_factory.mktemp("web-killed-template")
    prepare(_env(var, content))
    return var


@pytest.fixture
def site(prepared_var, content, tmp_path, docker_client):
    var = tmp_path / "var"
    shutil.copytree(prepared_var, var)
    remove_test_sandboxes(docker_client, FAULTS_SITE)
    site = LiveSite(_env(var, content), var)
    yield site
    site.stop()
    remove_test_sandboxes(docker_client, FAULTS_SITE)


def _env(var, content) -> dict:
    return {
        **os.environ,
        "LABSITE_VAR_DIR": str(var),
        "LABSITE_CONTENT_DIR": str(content),
        "LABSITE_SITE_NAME": FAULTS_SITE,
        "LABSITE_RECONCILE_SECONDS": str(RECONCILE_SECONDS),
        "DJANGO_SETTINGS_MODULE": "labsite.settings",
    }


def test_sigkill_while_a_lab_runs_keeps_the_same_session_container_and_shell(site, docker_client):
    site.start()
    browser = Browser(site.url)
    browser.login()
    session = browser.post(f"/api/labs/{_lab_id(browser)}/sessions/")
    _wait_for_state(browser, site, session["id"], {"running"}, seconds=60)
    asyncio.run(
        _type_and_see(
            browser,
            session["id"],
            "echo marker-123 > /tmp/x; export KEEP=1; echo typed-$((1+1))",
            b"typed-2",
        )
    )

    site.kill()
    site.start()
    assert browser.get(f"/api/sessions/{session['id']}/")["state"] == "running"
    # Two reconciler passes of the new process: neither ends it, removes or doubles it.
    deadline = time.monotonic() + 2.5 * RECONCILE_SECONDS
    while time.monotonic() < deadline:
        assert len(_containers(docker_client, session["id"])) == 1, site.log_tail()
        time.sleep(0.5)
    assert browser.get(f"/api/sessions/{session['id']}/")["state"] == "running"
    (container,) = _containers(docker_client, session["id"])
    assert container.status == "running"
    seen = asyncio.run(
        _type_and_see(
            browser, session["id"], "echo keep-$KEEP-$((40+2)) file-$(cat /tmp/x)", b"keep-1-42"
        )
    )
    assert b"file-marker-123" in seen


def test_sigkill_during_a_start_ends_running_with_one_container_set_up(site, docker_client):
    site.start()
    browser = Browser(site.url)
    browser.login()
    lab_id = _lab_id(browser, "slow-setup")
    session = browser.post(f"/api/labs/{lab_id}/sessions/")
    time.sleep(KILL_AFTER_START)
    site.kill()
    at_kill = _state_in_database(site, session["id"])
    assert at_kill in ("requested", "starting"), (
        f"the start had already ended ({at_kill}) when the process was killed: "
        "the test did not interrupt a start"
    )

    site.start()
    # The dead worker's lease lapses, the new process's reconciler takes the start over.
    bound = LEASE.total_seconds() + 3 * RECONCILE_SECONDS + 30
    body = _wait_for_state(browser, site, session["id"], {"running", "failed"}, seconds=bound)
    if body["state"] == "failed":
        assert body["failure_message"], "the start failed without saying why"
        _settle(lambda: _containers(docker_client, session["id"]) == [], site)
        return
    (container,) = _containers(docker_client, session["id"])
    assert container.status == "running"
    again_status, again = browser.call("POST", f"/api/labs/{lab_id}/sessions/")
    assert (again_status, again["id"]) == (200, session["id"])
    assert len(_containers(docker_client, session["id"])) == 1
    setup = container.exec_run(["cat", "/root/setup-done"])
    assert (setup.exit_code, setup.output) == (0, b"done\n"), (
        "the lab runs, but its setup.sh did not run to the end: the student gets a lab "
        f"that was never set up (setup-done: {setup.output!r})"
    )


# -- helpers ------------------------------------------------------------------------------


def _lab_id(browser: Browser, slug: str = "hello") -> int:
    return next(lab["id"] for lab in browser.get("/api/labs/")["labs"] if lab["slug"] == slug)


def _containers(docker_client, session_id: str) -> list:
    label = f"{LABEL_SESSION}={session_id}"
    return docker_client.containers.list(all=True, filters={"label": label})


def _wait_for_state(browser, site, session_id: str, states: set[str], seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    body: dict = {}
    while time.monotonic() < deadline:
        body = browser.get(f"/api/sessions/{session_id}/")
        if body["state"] in states:
            return body
        time.sleep(0.3)
    raise AssertionError(
        f"session still {body.get('state')} after {seconds:.0f} s (wanted {sorted(states)}): "
        f"{body.get('failure_message')}\n{site.log_tail()}"
    )


def _settle(condition, site, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not so after {seconds} s\n{site.log_tail()}")
        time.sleep(0.3)


def _state_in_database(site, session_id: str) -> str:
    with sqlite3.connect(site.var / "db.sqlite3") as db:
        row = db.execute(
            "SELECT state FROM labsessions_labsession WHERE id = ?", (uuid.UUID(session_id).hex,)
        ).fetchone()
    return row[0]


async def _type_and_see(browser: Browser, session_id: str, line: str, needle: bytes) -> bytes:
    """Open tab 1 as the page would, type ``line`` and Enter, and return the output up to
    ``needle`` (chosen so that only the command's output contains it, not its echo)."""
    url = f"{browser.url.replace('http', 'ws')}/ws/sessions/{session_id}/terminals/1/"
    async with websockets.connect(url, additional_headers=browser.ws_headers()) as terminal:
        seen = await _read_until(terminal, b'"attached"', b"")
        await terminal.send(line.encode() + b"\r")
        return await _read_until(terminal, needle, seen)


async def _read_until(terminal, needle: bytes, seen: bytes) -> bytes:
    start = len(seen)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while needle not in seen[start:]:
        if loop.time() > deadline:
            raise AssertionError(f"{needle!r} not seen; got {seen[-400:]!r}")
        frame = await asyncio.wait_for(terminal.recv(), max(0.1, deadline - loop.time()))
        seen += frame if isinstance(frame, bytes) else frame.encode()
    return seen
