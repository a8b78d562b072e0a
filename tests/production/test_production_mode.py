"""Production mode for real: PostgreSQL, the Redis channel layer, two Daphne processes and a
separate reconciler, all configured by environment variables (started by bin/test).

The course is a copy of the test course with five more copies of the ``hello`` lab, so one
student can press Start on six different container labs at once (the limit races)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import docker
import psycopg
import pytest
import websockets

from provisioning.base import LABEL_OWNER, LABEL_SITE
from tests.conftest import FIXTURE_CONTENT, PRODUCTION_SITE
from tests.docker.conftest import remove_test_sandboxes
from tests.livesite import MANAGE, ROOT, Browser, create_students, free_port, prepare, wait_for
from tests.production.proxy import RoundRobinProxy

pytestmark = [pytest.mark.postgres, pytest.mark.docker]
PG = "postgresql://labsite:labsite@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6390/5"
METRICS_TOKEN = secrets.token_urlsafe(24)
#: The default LABSITE_MAX_ACTIVE_SESSIONS, which the cluster runs with.
MAX_ACTIVE_SESSIONS = 2
LIVE_STATES = ("requested", "starting", "running")
#: The six container labs of the cluster's course: hello and its copies.
SIX_LABS = ["hello", *(f"hello-{n}" for n in range(2, 7))]


@dataclasses.dataclass
class Cluster:
    urls: list[str]
    env: dict[str, str]
    database: str
    #: The round-robin proxy in front of both processes, as students reach them.
    proxy_url: str = ""


def six_lab_content(root: Path) -> Path:
    """The fixture course, copied, with hello-2 … hello-6 beside hello."""
    content = root / "content"
    shutil.copytree(FIXTURE_CONTENT, content)
    labs = content / "testcourse" / "01-basics" / "labs"
    for slug in SIX_LABS[1:]:
        shutil.copytree(labs / "hello", labs / slug)
        lab_yaml = labs / slug / "lab.yaml"
        lab_yaml.write_text(lab_yaml.read_text().replace("title: 你好，容器", f"title: {slug}"))
    return content


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
        "LABSITE_CONTENT_DIR": str(six_lab_content(tmp_path_factory.mktemp("prod-content"))),
        "LABSITE_SITE_NAME": PRODUCTION_SITE,
        "LABSITE_RECONCILE_SECONDS": "2",
        "LABSITE_MAX_ACTIVE_SESSIONS": str(MAX_ACTIVE_SESSIONS),
        "LABSITE_METRICS_TOKEN": METRICS_TOKEN,
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
    with RoundRobinProxy([("127.0.0.1", p) for p in ports]) as proxy:
        yield Cluster(urls=urls, env=env, database=f"{PG}/{name}", proxy_url=proxy.url)
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=15)
    log.close()
    remove_test_sandboxes(docker.from_env(), PRODUCTION_SITE)
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_two_daphne_processes_share_sessions_terminals_and_events(cluster):
    first, second = Browser(cluster.urls[0]), Browser(cluster.urls[1])
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


# -- limits under races: one student, many simultaneous Start presses, both processes ------


def test_twelve_simultaneous_starts_of_six_labs_never_pass_the_running_labs_limit(cluster):
    browsers = _student(cluster, "rita")
    labs = _lab_ids(browsers[0])
    # Each of the six labs pressed twice: once through each Daphne process.
    presses = [
        (browsers[i // 6], f"/api/labs/{labs[SIX_LABS[i % 6]]}/sessions/") for i in range(12)
    ]
    answers = _all_at_once(presses)
    try:
        for status, body in answers:
            assert status in (200, 201, 409), (status, body)
            if status == 409:
                assert body["error"]["code"] == "too_many_sessions", body
                assert body["error"]["message"]
        created = {body["id"] for status, body in answers if status == 201}
        live = _live_sessions(cluster, "rita")
        assert len(live) <= MAX_ACTIVE_SESSIONS, live
        assert len(created) == MAX_ACTIVE_SESSIONS, answers
        assert set(live) == created
        # The refused presses made no sandbox: exactly the live sessions' containers run.
        _wait_until_running(browsers[0], live)
        assert len(_containers("rita")) == len(live)
    finally:
        _stop_everything(cluster, browsers[0], "rita")


def test_thirty_simultaneous_starts_of_one_lab_make_exactly_one_session(cluster):
    browsers = _student(cluster, "sam")
    lab_id = _lab_ids(browsers[0])["hello"]
    presses = [(browsers[i % 2], f"/api/labs/{lab_id}/sessions/") for i in range(30)]
    answers = _all_at_once(presses)
    try:
        assert all(status in (200, 201) for status, _body in answers), answers
        assert [status for status, _body in answers].count(201) == 1, answers
        assert len({body["id"] for _status, body in answers}) == 1
        live = _live_sessions(cluster, "sam")
        assert len(live) == 1 and live == _all_sessions(cluster, "sam")
        _wait_until_running(browsers[0], live)
        assert len(_containers("sam")) == 1
    finally:
        _stop_everything(cluster, browsers[0], "sam")


def _student(cluster: Cluster, username: str) -> list[Browser]:
    """A new student, logged in once; one browser per Daphne process sharing the cookies."""
    create_students(cluster.env, username)
    first = Browser(cluster.urls[0])
    first.login(username)
    return [first, *(Browser(url, first.jar) for url in cluster.urls[1:])]


def _lab_ids(browser: Browser) -> dict[str, int]:
    labs = {lab["slug"]: lab for lab in browser.get("/api/labs/")["labs"]}
    ready = [s for s in SIX_LABS if labs.get(s, {}).get("status") == "ready"]
    assert ready == SIX_LABS, f"the course copy lacks ready labs: {sorted(labs)}"
    assert all(labs[s]["kind"] == "container" for s in SIX_LABS)
    return {slug: labs[slug]["id"] for slug in SIX_LABS}


def _all_at_once(presses: list[tuple[Browser, str]]) -> list[tuple[int, dict]]:
    """POST every path in its own thread, released together."""
    barrier = threading.Barrier(len(presses))
    answers: list = [None] * len(presses)

    def press(index: int, browser: Browser, path: str) -> None:
        barrier.wait(timeout=30)
        try:
            answers[index] = browser.call("POST", path)
        except Exception as exc:  # reported below, with the others' answers
            answers[index] = (None, {"exception": repr(exc)})

    threads = [
        threading.Thread(target=press, args=(i, browser, path))
        for i, (browser, path) in enumerate(presses)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer is not None for answer in answers), "a start request never answered"
    return answers


def _sessions(cluster: Cluster, username: str, states: tuple[str, ...] | None) -> set[str]:
    query = (
        "SELECT s.id::text FROM labsessions_labsession s JOIN auth_user u ON u.id = s.owner_id "
        "WHERE u.username = %s AND (%s::text[] IS NULL OR s.state = ANY(%s::text[]))"
    )
    states_list = list(states) if states else None
    with psycopg.connect(cluster.database) as conn:
        rows = conn.execute(query, (username, states_list, states_list)).fetchall()
    return {row[0] for row in rows}


def _live_sessions(cluster: Cluster, username: str) -> set[str]:
    return _sessions(cluster, username, LIVE_STATES)


def _all_sessions(cluster: Cluster, username: str) -> set[str]:
    return _sessions(cluster, username, None)


def _containers(username: str) -> list:
    client = docker.from_env()
    try:
        labels = [f"{LABEL_SITE}={PRODUCTION_SITE}", f"{LABEL_OWNER}={username}"]
        return client.containers.list(all=True, filters={"label": labels})
    finally:
        client.close()


def _wait_until_running(browser: Browser, session_ids: set[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {i: browser.get(f"/api/sessions/{i}/")["state"] for i in session_ids}
        if all(state == "running" for state in states.values()):
            return
        time.sleep(0.3)
    raise AssertionError(f"not all running after {seconds} s: {states}")


def _stop_everything(cluster: Cluster, browser: Browser, username: str) -> None:
    """Stop the student's sessions and wait until their containers are gone."""
    for session_id in _live_sessions(cluster, username):
        browser.call("POST", f"/api/sessions/{session_id}/stop/")
    deadline = time.monotonic() + 60
    while _sessions(cluster, username, (*LIVE_STATES, "stopping")) or _containers(username):
        if time.monotonic() > deadline:
            raise AssertionError(f"{username}'s sessions did not stop within 60 s")
        time.sleep(0.5)


# -- watching with consent across processes -----------------------------------------------------


def _instructor_of(cluster: Cluster, student: str, instructor: str) -> None:
    from tests.conftest import PASSWORD

    script = (
        "from django.contrib.auth import get_user_model;"
        "from apps.accounts.roles import assign_role, Role;"
        "from apps.teaching.models import Classroom, Enrollment;"
        f"t = get_user_model().objects.create_user({instructor!r}, password={PASSWORD!r});"
        "assign_role(t, Role.INSTRUCTOR);"
        f"room = Classroom.objects.create(name='class of ' + {instructor!r});"
        "room.instructors.add(t);"
        f"Enrollment.objects.create(classroom=room, student=get_user_model().objects.get("
        f"username={student!r}))"
    )
    subprocess.run([*MANAGE, "shell", "-c", script], env=cluster.env, check=True, cwd=ROOT)


def test_an_instructor_on_one_process_watches_a_student_on_the_other(cluster):
    create_students(cluster.env, "wanda")
    _instructor_of(cluster, "wanda", "victor")
    student, teacher = Browser(cluster.urls[0]), Browser(cluster.urls[1])
    student.login("wanda")
    teacher.login("victor")
    lab_id = next(lab["id"] for lab in student.get("/api/labs/")["labs"] if lab["slug"] == "hello")
    session = student.post(f"/api/labs/{lab_id}/sessions/")
    _wait_until_running(student, {session["id"]})
    asyncio.run(_watch_across_processes(student, teacher, session["id"]))
    student.post(f"/api/sessions/{session['id']}/stop/")


async def _watch_across_processes(student: Browser, teacher: Browser, session_id: str) -> None:
    ws_student = student.url.replace("http", "ws") + f"/ws/sessions/{session_id}"
    ws_teacher = teacher.url.replace("http", "ws") + f"/ws/sessions/{session_id}"

    async def until(socket, predicate, seconds: float = 15):
        deadline = time.monotonic() + seconds
        seen = b""
        while time.monotonic() < deadline:
            frame = await asyncio.wait_for(socket.recv(), deadline - time.monotonic())
            if isinstance(frame, bytes):
                seen += frame
                if predicate(seen, None):
                    return seen
            elif predicate(seen, json.loads(frame)):
                return json.loads(frame)
        raise AssertionError(f"not seen; got {seen[-300:]!r}")

    headers = {"additional_headers": student.ws_headers()}
    async with (
        websockets.connect(f"{ws_student}/terminals/1/", **headers) as terminal,
        websockets.connect(f"{ws_student}/events/", **headers) as events,
        websockets.connect(
            f"{ws_teacher}/watch/1/", additional_headers=teacher.ws_headers()
        ) as watch,
    ):
        watchers = await until(
            events, lambda _, m: m and m.get("type") == "watchers" and m["watchers"]
        )
        assert watchers["watchers"][0]["name"] == "victor"
        await terminal.send(b"echo seen-by-victor-$((40+2))\r")
        await until(watch, lambda data, _: b"seen-by-victor-42" in data)
        await watch.send(json.dumps({"type": "ask-to-type"}))
        asking = await until(
            events,
            lambda _, m: m and m.get("type") == "watchers" and m["watchers"][0]["asking"],
        )
        await events.send(json.dumps({"type": "watch-allow", "watch": asking["watchers"][0]["id"]}))
        await until(watch, lambda _, m: m and m.get("type") == "watch-state" and m["typing"])
        await watch.send(b"echo typed-by-victor-$((6*7))\r")
        await until(terminal, lambda data, _: b"typed-by-victor-42" in data)


def _admin(cluster: Cluster, username: str) -> None:
    from tests.conftest import PASSWORD

    script = (
        "from django.contrib.auth import get_user_model;"
        "from apps.accounts.roles import assign_role, Role;"
        f"assign_role(get_user_model().objects.create_user({username!r}, password={PASSWORD!r}),"
        " Role.ADMIN)"
    )
    subprocess.run([*MANAGE, "shell", "-c", script], env=cluster.env, check=True, cwd=ROOT)


def _page(browser: Browser, path: str, data: bytes | None = None) -> str:
    headers = {"X-CSRFToken": browser.cookie("csrftoken"), "Referer": browser.url + "/"}
    request = urllib.request.Request(browser.url + path, data=data, headers=headers)
    with browser.opener.open(request, timeout=30) as response:
        return response.read().decode()


def test_the_admins_dashboard_on_one_process_sees_a_start_made_on_the_other(cluster):
    create_students(cluster.env, "dana")
    _admin(cluster, "root-admin")
    student, admin = Browser(cluster.urls[0]), Browser(cluster.urls[1])
    student.login("dana")
    admin.login("root-admin")
    lab_id = _lab_ids(student)["hello"]
    session = student.post(f"/api/labs/{lab_id}/sessions/")
    for _ in range(150):
        live = _page(admin, "/hosts/live/")
        if f'data-session="{session["id"]}"' in live and "dana" in live:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the dashboard on the other process never showed the start")
    _wait_until_running(student, {session["id"]})
    # The admin stops it from there; the student's own process says so.
    _page(admin, f"/hosts/sessions/{session['id']}/stop/", data=b"")
    for _ in range(150):
        if student.get(f"/api/sessions/{session['id']}/")["state"] in ("stopped", "stopping"):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the admin's stop never reached the session")


def test_metrics_need_the_token_and_parse_as_prometheus_text(cluster):
    from prometheus_client.parser import text_string_to_metric_families

    anonymous = urllib.request.Request(cluster.proxy_url + "/metrics")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, timeout=10)
    assert refused.value.code == 403
    wrong = urllib.request.Request(
        cluster.proxy_url + "/metrics", headers={"Authorization": "Bearer nope"}
    )
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(wrong, timeout=10)
    for _ in range(2):  # through the proxy: one process, then the other
        request = urllib.request.Request(
            cluster.proxy_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
        assert {"labsite_sessions", "labsite_sessions_queued", "labsite_host_up"} <= set(families)
        hosts = {s.labels["host"] for s in families["labsite_host_up"].samples}
        assert "local-docker" in hosts


STORM = 50
STORM_SETUP = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from apps.accounts.models import ApiToken
from apps.accounts.roles import assign_role, Role
from apps.hosts.models import Host
Host.objects.filter(engine="docker").update(max_sessions=500)
for i in range({n}):
    user = get_user_model().objects.create_user(f"storm{{i:02d}}", password="x")
    assign_role(user, Role.STUDENT)
    _, token = ApiToken.issue(user, "storm")
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    print(user.username, token, session.session_key)
"""


def test_a_storm_of_fifty_starts_through_the_proxy_drops_nobody(cluster):
    """Fifty students press Start at the same instant, through the proxy, and each does
    what the lab page does: the events socket until running, then the terminal socket until
    the prompt. Every one of them must get there (how fast is bench/starts.py's business)."""
    done = subprocess.run(
        [*MANAGE, "shell", "-c", STORM_SETUP.format(n=STORM)], env=cluster.env, check=True,
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    students = [line.split() for line in done.stdout.splitlines() if line.startswith("storm")]
    assert len(students) == STORM
    lab_id = _hello_id(cluster)
    started: dict[str, str] = {}  # token -> session id
    results = asyncio.run(_storm(cluster.proxy_url, lab_id, students, started))
    failed = [r for r in results if r is not True]
    try:
        assert not failed, (
            f"{len(failed)} of {STORM} never reached a prompt: {failed[:5]}\n"
            + _why_from_log(cluster)
        )
    finally:
        asyncio.run(_stop_all(cluster.proxy_url, started))


def _why_from_log(cluster: Cluster) -> str:
    """The servers' own account of failed starts, for a red run's report."""
    log = Path(cluster.env["LABSITE_VAR_DIR"]) / "processes.log"
    words = ("failed to start", "unexpected error", "lease", "unavailable", "Error")
    lines = [line for line in log.read_text(errors="replace").splitlines()
             if any(word in line for word in words)]  # fmt: skip
    return "\n".join(lines[-30:])


def _hello_id(cluster: Cluster) -> int:
    script = "from apps.courses.models import Lab; print(Lab.objects.get(slug='hello').pk)"
    done = subprocess.run([*MANAGE, "shell", "-c", script], env=cluster.env, check=True,
                          cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    return int(done.stdout.strip().splitlines()[-1])


def _api(base: str, token: str, method: str, path: str) -> dict:
    request = urllib.request.Request(
        base + path, data=b"" if method == "POST" else None, method=method,
        headers={"Authorization": f"Token {token}"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


async def _storm(base: str, lab_id: int, students: list[list[str]], started: dict) -> list:
    ws_base = base.replace("http://", "ws://")
    go = asyncio.Event()

    async def one(name: str, token: str, cookie: str):
        headers = {"Cookie": f"sessionid={cookie}"}
        try:
            await go.wait()
            session = await asyncio.to_thread(
                _api, base, token, "POST", f"/api/labs/{lab_id}/sessions/"
            )
            started[token] = session["id"]
            async with websockets.connect(
                f"{ws_base}/ws/sessions/{session['id']}/events/", origin=base,
                additional_headers=headers, open_timeout=60, ping_interval=None,
            ) as events:  # fmt: skip
                while True:
                    message = json.loads(await asyncio.wait_for(events.recv(), 120))
                    state = message.get("session", {}).get("state")
                    if state == "running":
                        break
                    if state in ("failed", "stopped", "expired"):
                        why = message["session"].get("failure_message") or message["session"].get(
                            "end_reason"
                        )
                        return f"{name}: {state}: {why}"
            async with websockets.connect(
                f"{ws_base}/ws/sessions/{session['id']}/terminals/1/", origin=base,
                additional_headers=headers, open_timeout=60, ping_interval=None,
            ) as terminal:  # fmt: skip
                seen = b""
                while b"root@lab" not in seen:
                    chunk = await asyncio.wait_for(terminal.recv(), 60)
                    if isinstance(chunk, bytes):
                        seen = (seen + chunk)[-4096:]
            return True
        except Exception as exc:  # each failure is reported with its student
            return f"{name}: {type(exc).__name__}: {exc}"[:200]

    tasks = [asyncio.create_task(one(*student)) for student in students]
    await asyncio.sleep(0.2)
    go.set()  # all at once
    return await asyncio.gather(*tasks)


async def _stop_all(base: str, started: dict[str, str]) -> None:
    def stop(token: str, session_id: str) -> None:
        with contextlib.suppress(Exception):
            _api(base, token, "POST", f"/api/sessions/{session_id}/stop/")

    await asyncio.gather(*(asyncio.to_thread(stop, t, s) for t, s in started.items()))
