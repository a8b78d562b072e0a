"""Start benchmark: time from pressing Start to a usable prompt, for 1, 10 and 50
students starting at once.

    cd /work/main && .venv/bin/python bench/starts.py

Boots a live site (``manage.py runsite``: Daphne + reconciler, own SQLite, the test
course, site label ``labsite-bench``) with 50 students, each with an API token and a
logged-in browser session. Each student does what the lab page does:

1. POST /api/labs/<id>/sessions/                       (Start pressed: t = 0)
2. follow /ws/sessions/<id>/events/ until the session is ``running`` (a warm pool's is
   running in the POST's answer: the page, and this, then open the terminal at once)
3. open /ws/sessions/<id>/terminals/1/ until ``{"type":"status","state":"attached"}``
4. read the terminal until the bash prompt (``root@lab``) has arrived: usable.

All students of a level start concurrently (asyncio, one connection each). Meanwhile one
more student, whose lab was already running, keeps typing (20 characters a second) and
the echo of each keystroke is timed: starts must not freeze the terminals of those at
work. Between levels every session is stopped through the API and the script waits
until its containers are gone.

Beside each cold level, in the same process, the **raw SDK baseline**: as many threads
as students, each doing what the engine must do at the least for a sandbox of the same
lab (docker-py ``create_container`` with the very container configuration the backend
uses, ``start``, and a first exec that prints a line), timed the same way.

Then the **warm pool**: the lab's pool is set to 50 (an admin's ``PoolSize``), the script
waits until it is full, and the levels run again: each Start claims a ready sandbox.
Prints figures only; asserts nothing. Bounded (< 7 min).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from concurrent.futures import ThreadPoolExecutor

import websockets
from websockets.asyncio.client import connect as ws_connect

from bench.common import (
    Api,
    LiveSite,
    OursClient,
    count_site_containers,
    drain,
    install_sigterm_as_keyboardinterrupt,
    log,
    pct,
    read_until,
    remove_site_sandboxes,
    start_running_session,
    stop_sessions,
    sync,
)
from provisioning.base import LABEL_SITE, Resources, SandboxSpec

#: Students pressing Start at once, per level (BENCH_LEVELS=1,3 for a quick look).
LEVELS = tuple(int(n) for n in os.environ.get("BENCH_LEVELS", "1,10,50").split(","))
PROMPT = b"@lab"  # PS1 is \u@\h and every lab container's hostname is "lab"
LEVEL_TIMEOUT = 60.0
HEADER = ("students          ", "p50", "p95", "max", "failed", "POST p50", "→running p50",
          "→attached p50", "→prompt p50", "wall", "typist echo p50", "p99", "max")  # fmt: skip
TYPIST_PACE = 0.05  # the working student types 20 characters a second
WIDTHS = [max(len(h), 8) for h in HEADER]
TOTAL_BUDGET = 400.0
RAW_SITE = "labsite-bench-raw"  # not the bench site's label: its reconciler would remove them
POOL = max(LEVELS)
POOL_FILL_TIMEOUT = 150.0

SPEC_SCRIPT = """
import dataclasses, json
from apps.courses.models import Lab
from apps.sessions.specs import spec_for
lab = Lab.objects.get(pk={lab_id})
print("SPEC " + json.dumps(dataclasses.asdict(spec_for(lab, name="", labels={{}}))))
"""
POOL_SCRIPT = """
from apps.pools.models import PoolSize
PoolSize.objects.update_or_create(lab_id={lab_id}, defaults={{"size": {size}}})
"""
ROOMY_HOSTS = """
from apps.hosts.models import Host
Host.objects.update(max_sessions=500)
"""
READY_SCRIPT = """
from apps.pools.models import WarmSandbox
print("READY", WarmSandbox.objects.filter(lab_id={lab_id}, state="ready").count())
"""


async def one_student(site: LiveSite, user, lab_id: int) -> dict:
    t0 = time.perf_counter()
    marks: dict[str, float] = {}
    out: dict = {"user": user.name, "ok": False}
    events = term = None
    try:
        session = await Api(site, user).start(lab_id)
        out["session"] = session["id"]
        marks["post"] = time.perf_counter()
        if session["state"] == "running":  # a warm pool's: the page opens the terminal at once
            marks["running"] = marks["post"]
        else:
            events = await _follow_until_running(site, user, session)
            marks["running"] = time.perf_counter()
        term = await OursClient.open(site, session["id"], user.cookie, tab=1,
                                     timeout=LEVEL_TIMEOUT)  # fmt: skip
        marks["attached"] = time.perf_counter()
        if PROMPT not in term.pre_attach:
            await read_until(term, PROMPT, LEVEL_TIMEOUT)
        marks["prompt"] = time.perf_counter()
        out["ok"] = True
    except Exception as exc:  # a failed start is a figure too
        step = next((n for n in ("post", "running", "attached", "prompt") if n not in marks), "")
        out["error"] = f"before '{step}': {type(exc).__name__}: {exc}"[:200]
    finally:
        for sock in (term, events):
            if sock is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sock.close(), 5)
    prev = t0
    for name in ("post", "running", "attached", "prompt"):
        if name in marks:
            out[name] = marks[name] - prev
            prev = marks[name]
    if out["ok"]:
        out["total"] = marks["prompt"] - t0
    return out


async def _follow_until_running(site: LiveSite, user, session: dict):
    """The page's events socket, read until the session runs (the open socket returned)."""
    events = await ws_connect(
        f"ws://127.0.0.1:{site.port}/ws/sessions/{session['id']}/events/",
        origin=site.origin, additional_headers={"Cookie": f"sessionid={user.cookie}"},
        compression=None, ping_interval=None, open_timeout=LEVEL_TIMEOUT,
    )  # fmt: skip
    while True:
        msg = json.loads(await events.recv())
        if msg.get("type") != "session":
            continue
        state = msg["session"]["state"]
        if state == "running":
            break
        if state in ("failed", "stopped", "expired"):
            await events.close()
            raise RuntimeError(f"{state}: {msg['session'].get('failure_message')}")
    return events


async def wait_containers(expected: int = 0, timeout: float = 45, owned_only=False) -> int:
    deadline = time.monotonic() + timeout
    while True:
        left = await asyncio.to_thread(count_site_containers, owned_only=owned_only)
        if left <= expected or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.25)


async def typist(term, stop: asyncio.Event, out: list[float]) -> None:
    """A student already at work: types a letter, waits for its echo, erases it."""
    letters, i = b"vwxyz", 0
    while not stop.is_set():
        ch = letters[i % len(letters) : i % len(letters) + 1]
        i += 1
        t0 = time.perf_counter()
        await term.send(ch)
        _n, seen = await read_until(term, ch, 30)
        out.append(seen - t0)
        await term.send(b"\x7f")
        with contextlib.suppress(TimeoutError):
            await term.consumed(len(await term.recv(5)))
        await asyncio.sleep(max(0.0, TYPIST_PACE - (time.perf_counter() - t0)))


def raw_start(spec: SandboxSpec, index: int) -> dict:
    """One sandbox the raw way: create (same configuration), start, first exec."""
    import docker

    from provisioning.docker import config

    t0 = time.perf_counter()
    api = docker.APIClient()
    name = f"{RAW_SITE}-{index}-{int(t0 * 1000) % 100000}"
    spec = dataclasses.replace(spec, name=name, labels={LABEL_SITE: RAW_SITE})
    tools = "/var/lib/labsite/tools" if Path("/var/lib/labsite/tools").is_dir() else None
    try:
        kwargs = config.container_config(spec, network=None, tools_dir=tools)
        host_config = api.create_host_config(**kwargs.pop("host_config"))
        container = api.create_container(host_config=host_config, **kwargs)["Id"]
        api.start(container)
        exec_id = api.exec_create(container, ["sh", "-c", "echo ready"])["Id"]
        out = api.exec_start(exec_id)
        ok = b"ready" in out
        return {"ok": ok, "total": time.perf_counter() - t0}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    finally:
        api.close()


async def raw_level(spec: SandboxSpec, level: int) -> tuple[list[dict], float]:
    pool = ThreadPoolExecutor(max_workers=level)
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    try:
        results = await asyncio.gather(
            *(loop.run_in_executor(pool, raw_start, spec, i) for i in range(level))
        )
    finally:
        pool.shutdown(wait=False)
    wall = time.perf_counter() - t0
    await asyncio.to_thread(remove_site_sandboxes, RAW_SITE)
    return results, wall


def lab_spec(site: LiveSite, lab_id: int) -> SandboxSpec:
    out = site.manage("shell", "-c", SPEC_SCRIPT.format(lab_id=lab_id))
    raw = json.loads(next(ln for ln in out.splitlines() if ln.startswith("SPEC "))[5:])
    raw["resources"] = Resources(**raw["resources"])
    raw["capabilities"] = tuple(raw["capabilities"])
    return SandboxSpec(**raw)


async def fill_pool(site: LiveSite, lab_id: int, size: int) -> float:
    """Set the lab's pool to ``size`` and wait until that many are ready; seconds taken."""
    t0 = time.perf_counter()
    await asyncio.to_thread(
        site.manage, "shell", "-c", POOL_SCRIPT.format(lab_id=lab_id, size=size)
    )
    while time.perf_counter() - t0 < POOL_FILL_TIMEOUT:
        out = await asyncio.to_thread(
            site.manage, "shell", "-c", READY_SCRIPT.format(lab_id=lab_id)
        )
        ready = int(next(ln for ln in out.splitlines() if ln.startswith("READY")).split()[1])
        if ready >= size:
            return time.perf_counter() - t0
        await asyncio.sleep(1)
    raise TimeoutError(f"the pool did not reach {size} in {POOL_FILL_TIMEOUT:.0f}s")


def fmt(x: float) -> str:
    return "-" if x != x else f"{x:.2f} s"


def ms(x: float) -> str:
    return "-" if x != x else f"{x * 1000:.0f} ms"


async def run(site: LiveSite, rows: list, state: dict) -> None:
    lab_id = await Api(site, site.users[0]).lab_id()
    # One more student, already working, types throughout (the last user).
    worker = site.users[-1]
    session = await start_running_session(site, worker, lab_id)
    state["worker"] = (worker, session["id"])
    term = state["worker_term"] = await OursClient.open(site, session["id"], worker.cookie)
    await sync(term)
    spec = await asyncio.to_thread(lab_spec, site, lab_id)
    for warm in (False, True):
        if warm:
            took = await fill_pool(site, lab_id, POOL)
            log(f"pool of {POOL} filled in {took:.1f}s")
            print(f"\nWarm pool of {POOL} (filled in {took:.1f} s): Start claims a ready one")
        for level in LEVELS:
            if warm:
                await fill_pool(site, lab_id, POOL)  # refilled since the last level
            await run_level(site, rows, term, lab_id, level, "warm" if warm else "cold")
            if not warm:
                results, wall = await raw_level(spec, level)
                print_level(level, results, wall, [], label="raw SDK")


async def run_level(site, rows, term, lab_id: int, level: int, mode: str) -> None:
    students = site.users[:level]
    log(f"{level} student(s) pressing Start at once ({mode}) …")
    stop, echoes = asyncio.Event(), []
    typing = asyncio.get_running_loop().create_task(typist(term, stop, echoes))
    t0 = time.perf_counter()
    results = await asyncio.wait_for(
        asyncio.gather(*(one_student(site, u, lab_id) for u in students)),
        LEVEL_TIMEOUT + 15,
    )
    wall = time.perf_counter() - t0
    stop.set()
    await asyncio.wait_for(typing, 35)
    await drain(term)
    rows.append((level, results, wall))
    print_level(level, results, wall, echoes, label=f"ours, {mode}")
    t1 = time.perf_counter()
    pairs = [(u, r["session"]) for u, r in zip(students, results, strict=True) if "session" in r]
    await asyncio.wait_for(stop_sessions(site, pairs, timeout=40), 45)
    left = await wait_containers(expected=1, owned_only=True)
    log(f"  stopped {len(pairs)} session(s) in {time.perf_counter() - t1:.1f}s; "
        f"{left - 1} of theirs left")  # fmt: skip


def print_level(
    level: int, results: list[dict], wall: float, echoes: list[float], label: str
) -> None:
    ok = [r for r in results if r["ok"]]
    totals = [r["total"] for r in ok]
    phase = {k: [r[k] for r in ok if k in r] for k in ("post", "running", "attached", "prompt")}
    cells = [f"{level} {label}", fmt(pct(totals, 50)), fmt(pct(totals, 95)),
             fmt(max(totals) if totals else float("nan")), str(len(results) - len(ok)),
             *(fmt(pct(phase[k], 50)) for k in phase), fmt(wall),
             ms(pct(echoes, 50)), ms(pct(echoes, 99)),
             ms(max(echoes, default=float("nan")))]  # fmt: skip
    print(
        "| " + " | ".join(c.rjust(w) for c, w in zip(cells, WIDTHS, strict=True)) + " |", flush=True
    )
    for r in results:
        if not r["ok"]:
            print(f"|          failure ({r['user']}): {r.get('error')}")


async def main() -> int:
    install_sigterm_as_keyboardinterrupt()
    removed = remove_site_sandboxes()
    if removed:
        log(f"removed {removed} leftover bench container(s)")
    site = LiveSite(users=max(LEVELS) + 1)
    t0 = time.perf_counter()
    rows: list = []
    state: dict = {}
    try:
        site.boot()
        # The site's own Docker host takes 50 sessions by default: the working student and
        # fifty more would leave one in the queue (correctly), which is not what is measured.
        site.manage("shell", "-c", ROOMY_HOSTS)
        log(f"site up at {site.url} (pid {site.pid}) with {len(site.users)} students "
            f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip
        print("Start → usable prompt (POST, events socket until running, terminal attached, "
              "prompt bytes received)")  # fmt: skip
        print("| " + " | ".join(h.rjust(w) for h, w in zip(HEADER, WIDTHS, strict=True)) + " |")
        print("|" + "|".join("-" * (w + 1) + ":" for w in WIDTHS) + "|")
        await asyncio.wait_for(run(site, rows, state), TOTAL_BUDGET)
        print(
            "(phase columns are medians of the time each phase took, from the end of "
            "the previous one; wall = until the level's last student had a prompt;\n"
            " typist = one more student, already working, typing 20 characters a second "
            "during the level: keystroke → echo)"
        )
        return 0
    except TimeoutError:
        log(f"gave up after {TOTAL_BUDGET:.0f}s")
        return 1
    except websockets.InvalidStatus as exc:
        log(f"websocket refused: {exc}")
        return 1
    except Exception as exc:
        log(f"benchmark failed: {exc!r}")
        log(site.log_tail())
        return 1
    finally:
        if "worker_term" in state:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(state["worker_term"].close(), 5)
        if "worker" in state and site.proc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stop_sessions(site, [state["worker"]], 15), 20)
        site.stop()
        removed = remove_site_sandboxes()
        log(
            f"cleaned up: site stopped, {removed} container(s) force-removed, "
            f"{count_site_containers()} left; total {time.perf_counter() - t0:.0f}s"
        )


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        remove_site_sandboxes()
        sys.exit(130)
