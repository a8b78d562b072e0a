"""Terminal benchmark: our WebSocket bridge vs terminado vs a direct Docker exec, side by
side in one run against the same lab container.

    cd /work/main && .venv/bin/python bench/terminal.py

Boots a live site (``manage.py runsite``) with its own SQLite and the test course, starts
one lab session through the JSON API, then measures three paths into that container:

(a) ours       ws://…/ws/sessions/<id>/terminals/1/ (Daphne → TerminalConsumer → tmux t1),
               acknowledging output like the lab page (frontend/src/flow.js budgets);
(b) terminado  terminado.TermSocket + UniqueTermManager in a tornado app in a subprocess,
               shell ``docker exec -it <ctr> tmux -u new-session -A -s t9``;
(c) direct     docker SDK exec_create(tty, stdin) + exec_start(socket=True) running
               ``tmux -u new-session -A -s t8``, the socket read/written directly.

All three go through a tmux client in the container, as every student terminal does, so
the differences are the transport's. Then: threads of the site process around opening
20 more terminals, and the echo of one terminal while 5 other students flood theirs with
slow readers. Prints figures only; it asserts nothing about them. Bounded (< 3 min).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    PASSWORD,
    PYTHON,
    Api,
    Closed,
    DirectExecClient,
    LiveSite,
    OursClient,
    TerminadoClient,
    Timeout,
    count_site_containers,
    drain,
    free_port,
    install_sigterm_as_keyboardinterrupt,
    log,
    login_form,
    median,
    pct,
    read_until,
    remove_site_sandboxes,
    sentinel,
    start_running_session,
    stop_sessions,
    sync,
)

ECHO_SAMPLES = 200
#: One keystroke (plus its backspace) every 30 ms: 67 frames/s, under the server's
#: 100 frames/s input budget that acknowledgements share. Same pace for every path.
ECHO_PACE = 0.030
FLOOD_INPUT = 30_000_000  # bytes of /dev/zero fed to base64
FLOOD_OUTPUT = math.ceil(FLOOD_INPUT / 3) * 4 + math.ceil(math.ceil(FLOOD_INPUT / 3) * 4 / 76)
CTRL_C_RATE = 5_000_000  # the slow reader of the Ctrl-C test, bytes/s
CTRL_C_SLOW_RATE = 200_000  # a second run with a much slower reader (a weak laptop, 3G)
CTRL_C_AFTER = 1.0
N_TERMINALS = 20
N_FLOODERS = 5
SLOW_RATE = 8_000  # bytes/s of the flooding students' readers (a stalled background tab)
LOADED_SAMPLES = 100
TOTAL_BUDGET = 170  # seconds for the whole run, cleanup excluded


# --------------------------------------------------------------------------------------
# (b) the terminado server, run as a subprocess of this script
# --------------------------------------------------------------------------------------


def serve_terminado(port: int, container: str) -> None:
    import signal

    import tornado.web
    from terminado import TermSocket, UniqueTermManager

    async def main() -> None:
        manager = UniqueTermManager(
            shell_command=[
                "docker", "exec", "-it", "-e", "TERM=xterm-256color", "-e", "LANG=C.UTF-8",
                container, "tmux", "-u", "new-session", "-A", "-s", "t9",
            ]
        )  # fmt: skip
        app = tornado.web.Application([(r"/websocket", TermSocket, {"term_manager": manager})])
        server = app.listen(port, address="127.0.0.1")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print("READY", flush=True)
        await stop.wait()
        server.stop()
        await manager.shutdown()

    asyncio.run(main())


def start_terminado(container: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, __file__, "--terminado-server", str(port), container],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    line = proc.stdout.readline()
    if "READY" not in line:
        proc.kill()
        raise RuntimeError("terminado server did not start")
    return proc, port


# --------------------------------------------------------------------------------------
# Measurements (the same code for every path)
# --------------------------------------------------------------------------------------


async def echo_latency(term, samples: int = ECHO_SAMPLES, pace: float = ECHO_PACE) -> list[float]:
    """Type one printable character at the bash prompt, time until it is echoed, erase
    it with a backspace (wait for that echo too). Distinct letters that never occur in
    tmux's escape sequences, and only bytes that arrive after the keystroke count."""
    await sync(term)
    letters = b"vwxyz"
    out = []
    for i in range(samples):
        ch = letters[i % len(letters) : i % len(letters) + 1]
        t0 = time.perf_counter()
        await term.send(ch)
        _n, seen = await read_until(term, ch, 5)
        out.append(seen - t0)
        await term.send(b"\x7f")
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await term.consumed(len(await term.recv(1)))
        rest = pace - (time.perf_counter() - t0)
        if rest > 0:
            await asyncio.sleep(rest)
    await drain(term)
    return out


async def flood(term) -> dict:
    """``head -c 30000000 /dev/zero | base64`` then a sentinel: time until the prompt
    is back, i.e. until the student can type again."""
    await sync(term)
    cmd, out = sentinel()
    t0 = time.perf_counter()
    await term.send(f"head -c {FLOOD_INPUT} /dev/zero | base64; ".encode() + cmd + b"\r")
    total, seen = await read_until(term, out, 60)
    dt = seen - t0
    return {"seconds": dt, "output_mbps": FLOOD_OUTPUT / dt / 1e6, "wire_mbps": total / dt / 1e6}


async def ctrl_c(term, rate: float = CTRL_C_RATE) -> dict:
    """``yes`` read by a reader limited to ``rate`` bytes/s (ours acknowledges only what
    it consumed); after 1 s send Ctrl-C, then ``echo @@N@@``; time from the Ctrl-C until
    the reader has consumed the sentinel's output."""
    await sync(term)
    cmd, out = sentinel()
    sent: dict[str, float] = {}

    async def interrupt() -> None:
        await asyncio.sleep(CTRL_C_AFTER)
        sent["at"] = time.perf_counter()
        await term.send(b"\x03")
        await term.send(cmd + b"\r")

    await term.send(b"yes\r")
    task = asyncio.get_running_loop().create_task(interrupt())
    try:
        total, seen = await read_until(term, out, 20, rate=rate)
    except Timeout:
        await task
        with contextlib.suppress(Timeout):  # drain the backlog at full speed
            await read_until(term, out, 60)
        return {"seconds": float("inf"), "bytes": 0}
    await task
    await drain(term)
    return {"seconds": seen - sent["at"], "bytes": total}


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def container_of(session_id: str) -> str:
    import docker

    client = docker.from_env()
    try:
        rows = client.containers.list(filters={"label": f"labsite.session={session_id}"})
        return rows[0].name
    finally:
        client.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(x: float) -> str:
    return "timeout" if x == float("inf") else f"{x * 1000:.1f} ms"


def ratio(a: float, b: float) -> str:
    if not b or b != b or a != a or b == float("inf"):
        return "-"
    return f"{a / b:.2f}x"


async def run(site: LiveSite, state: dict) -> None:
    main_user = site.users[0]
    cookie = login_form(site, main_user.name, PASSWORD)  # the student's browser session
    api = Api(site, main_user)
    lab_id = await api.lab_id()
    t0 = time.perf_counter()
    session = await start_running_session(site, main_user, lab_id)
    state["sessions"].append((main_user, session["id"]))
    container = container_of(session["id"])
    log(f"session {session['id']} running after {time.perf_counter() - t0:.2f}s "
        f"in {container}")  # fmt: skip

    tproc, tport = start_terminado(container)
    state["terminado"] = tproc

    ours = await OursClient.open(site, session["id"], cookie, tab=1)
    terminado = await TerminadoClient.open(tport)
    direct = await DirectExecClient.open(container, ["tmux", "-u", "new-session", "-A", "-s", "t8"])
    paths = [ours, terminado, direct]
    state["clients"].extend(paths)
    for term in paths:
        await sync(term, timeout=15)

    results: dict[str, dict] = {t.name: {} for t in paths}
    log("echo latency …")
    for term in paths:
        cpu0, w0 = cpu_seconds(site.pid), time.perf_counter()
        results[term.name]["echo"] = await echo_latency(term)
        if term is ours:
            state["idle_cpu"] = (cpu_seconds(site.pid) - cpu0) / (time.perf_counter() - w0)
    log("flood throughput …")
    for term in paths:
        results[term.name]["flood"] = await flood(term)
    log("Ctrl-C under a flood …")
    for term in paths:
        results[term.name]["ctrl_c"] = await ctrl_c(term)
    for term in paths:
        results[term.name]["ctrl_c_slow"] = await ctrl_c(term, CTRL_C_SLOW_RATE)

    # What tmux costs: the same flood on a direct exec of bash, no tmux in between.
    bare = await DirectExecClient.open(container, ["bash", "--norc", "-i"])
    state["clients"].append(bare)
    await sync(bare, timeout=15)
    bare_flood = await flood(bare)
    await bare.close()

    print_main_table(results, bare_flood)

    # -- threads: no thread per terminal -------------------------------------------------
    log(f"threads around {N_TERMINALS} more terminals …")
    before = site.threads()
    t0 = time.perf_counter()
    many = await asyncio.gather(
        *(OursClient.open(site, session["id"], cookie, tab=1 + i % 4, timeout=30)
          for i in range(N_TERMINALS))
    )  # fmt: skip
    open_seconds = time.perf_counter() - t0
    state["clients"].extend(many)
    opened = site.threads()
    for term in many:  # tabs are shared by 5 clients each: one at a time
        await sync(term, timeout=15)
    active = site.threads()
    for term in many:
        await term.close()
    await asyncio.sleep(1.0)
    closed = site.threads()

    # -- a slow student does not slow the others -----------------------------------------
    log(f"echo while {N_FLOODERS} other students flood with slow readers …")
    others = site.users[1 : 1 + N_FLOODERS]
    started = await asyncio.gather(*(start_running_session(site, u, lab_id) for u in others))
    state["sessions"].extend((u, s["id"]) for u, s in zip(others, started, strict=True))
    flooders = await asyncio.gather(
        *(OursClient.open(site, s["id"], u.cookie) for u, s in zip(others, started, strict=True))
    )
    state["clients"].extend(flooders)
    for term in flooders:
        await sync(term, timeout=15)
        await term.send(b"yes\r")
    stop = asyncio.Event()
    slow_bytes = [0] * len(flooders)

    async def slow_reader(i: int, term) -> None:
        while not stop.is_set():
            try:
                chunk = await term.recv(0.5)
            except TimeoutError:
                continue
            except Closed:
                return
            await asyncio.sleep(len(chunk) / SLOW_RATE)
            slow_bytes[i] += len(chunk)
            await term.consumed(len(chunk))

    loop = asyncio.get_running_loop()
    readers = [loop.create_task(slow_reader(i, t)) for i, t in enumerate(flooders)]
    await asyncio.sleep(2.0)  # let the floods settle
    # What the floods alone cost the site process (nobody else types meanwhile).
    frames0, acks0 = sum(t.chunks for t in flooders), sum(t.acks_sent for t in flooders)
    cpu0, w0 = cpu_seconds(site.pid), time.perf_counter()
    await asyncio.sleep(3.0)
    cpu1, w1 = cpu_seconds(site.pid), time.perf_counter()
    flood_cpu = (cpu1 - cpu0) / (w1 - w0)
    flood_frames = (sum(t.chunks for t in flooders) - frames0) / (w1 - w0)
    flood_acks = (sum(t.acks_sent for t in flooders) - acks0) / (w1 - w0)
    cpu0, w0 = cpu_seconds(site.pid), time.perf_counter()
    loaded_ours = await echo_latency(ours, LOADED_SAMPLES)
    cpu1, w1 = cpu_seconds(site.pid), time.perf_counter()
    loaded_direct = await echo_latency(direct, LOADED_SAMPLES)
    load = os.getloadavg()[0]
    stop.set()
    await asyncio.gather(*readers, return_exceptions=True)
    for term in flooders:
        with contextlib.suppress(Exception):
            await term.send(b"\x03")
        await term.close()

    idle_ours, idle_direct = results["ours"]["echo"], results["direct"]["echo"]
    print()
    print(f"Site process threads (Threads: in /proc/{site.pid}/status), {N_TERMINALS} more "
          "terminals on the same session (5 clients on each of tabs 1-4):")  # fmt: skip
    print(f"  before: {before}   after opening {N_TERMINALS}: {opened}   after using them: "
          f"{active}   after closing them: {closed}   "
          f"(opened all {N_TERMINALS} at once in {open_seconds:.2f} s)")  # fmt: skip
    print()
    print(f"Echo of one terminal while {N_FLOODERS} other students (own containers) run "
          f"`yes` read at {SLOW_RATE // 1000} kB/s:")  # fmt: skip
    print(f"  {'':<22}{'idle p50':>12}{'idle p99':>12}{'loaded p50':>12}{'loaded p99':>12}")
    for name, idle, loaded in (("(a) ours", idle_ours, loaded_ours),
                               ("(c) direct exec", idle_direct, loaded_direct)):  # fmt: skip
        print(f"  {name:<22}{ms(median(idle)):>12}{ms(pct(idle, 99)):>12}"
              f"{ms(median(loaded)):>12}{ms(pct(loaded, 99)):>12}")  # fmt: skip
    print(f"  site process CPU during the loaded echo: "
          f"{(cpu1 - cpu0) / (w1 - w0) * 100:.0f}% of one core (idle echo: "
          f"{state['idle_cpu'] * 100:.0f}%); host load average "
          f"{load:.1f} on {os.cpu_count()} CPUs; slow readers consumed "
          f"{sum(slow_bytes) / 1e3:.0f} kB in total")  # fmt: skip
    per_frame = flood_cpu / max(1.0, flood_frames + flood_acks) * 1e3
    print(f"  the {N_FLOODERS} floods alone: site process CPU {flood_cpu * 100:.0f}% of one core "
          f"for {flood_frames:.0f} output frames/s and {flood_acks:.0f} acks/s "
          f"({per_frame:.2f} ms CPU per frame)")  # fmt: skip


def print_main_table(results: dict, bare_flood: dict) -> None:
    a, b, c = results["ours"], results["terminado"], results["direct"]
    rows = []

    def row(label, fa, fb, fc, fmt, higher_is_better=False):
        rows.append((label, fmt(fa), fmt(fb), fmt(fc), ratio(fa, fb), ratio(fa, fc)))

    for p, label in ((50, "echo p50"), (99, "echo p99")):
        row(label, pct(a["echo"], p), pct(b["echo"], p), pct(c["echo"], p), ms)
    mbps = lambda x: f"{x:.2f} MB/s"  # noqa: E731
    row("flood output rate", a["flood"]["output_mbps"], b["flood"]["output_mbps"],
        c["flood"]["output_mbps"], mbps, True)  # fmt: skip
    row("flood to prompt", a["flood"]["seconds"], b["flood"]["seconds"],
        c["flood"]["seconds"], lambda x: f"{x:.2f} s")  # fmt: skip
    row("bytes delivered", a["flood"]["wire_mbps"], b["flood"]["wire_mbps"],
        c["flood"]["wire_mbps"], mbps, True)  # fmt: skip
    row("Ctrl-C to prompt", a["ctrl_c"]["seconds"], b["ctrl_c"]["seconds"],
        c["ctrl_c"]["seconds"], ms)  # fmt: skip
    row("bytes read in Ctrl-C", a["ctrl_c"]["bytes"], b["ctrl_c"]["bytes"],
        c["ctrl_c"]["bytes"], lambda x: f"{x / 1e3:.0f} kB")  # fmt: skip
    slow = f"Ctrl-C, {CTRL_C_SLOW_RATE // 1000} kB/s reader"
    row(slow, a["ctrl_c_slow"]["seconds"], b["ctrl_c_slow"]["seconds"],
        c["ctrl_c_slow"]["seconds"], ms)  # fmt: skip
    row("bytes read in it", a["ctrl_c_slow"]["bytes"], b["ctrl_c_slow"]["bytes"],
        c["ctrl_c_slow"]["bytes"], lambda x: f"{x / 1e3:.0f} kB")  # fmt: skip

    head = ("metric", "(a) ours", "(b) terminado", "(c) direct exec", "ours/terminado",
            "ours/direct")  # fmt: skip
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    print()
    print(
        f"Terminal paths into one lab container ({ECHO_SAMPLES} echo samples; flood = "
        f"head -c {FLOOD_INPUT} /dev/zero | base64 = {FLOOD_OUTPUT / 1e6:.1f} MB; "
        f"Ctrl-C after {CTRL_C_AFTER:.0f} s of yes, reader at {CTRL_C_RATE / 1e6:.0f} MB/s)"
    )
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print(
        f"(no tmux: the same flood on a direct exec of bash takes "
        f"{bare_flood['seconds']:.2f} s = {bare_flood['output_mbps']:.2f} MB/s)"
    )
    print("Ratios are ours divided by the other: for times lower is better, for MB/s higher.")


async def main() -> int:
    install_sigterm_as_keyboardinterrupt()
    removed = remove_site_sandboxes()
    if removed:
        log(f"removed {removed} leftover bench container(s)")
    site = LiveSite(users=1 + N_FLOODERS)
    state: dict = {"sessions": [], "clients": [], "terminado": None}
    t0 = time.perf_counter()
    try:
        site.boot()
        log(f"site up at {site.url} (pid {site.pid}) in {time.perf_counter() - t0:.1f}s")
        await asyncio.wait_for(run(site, state), TOTAL_BUDGET)
        return 0
    except TimeoutError:
        log(f"gave up after {TOTAL_BUDGET}s")
        return 1
    except Exception as exc:
        log(f"benchmark failed: {exc!r}")
        log(site.log_tail())
        return 1
    finally:
        for term in state["clients"]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(term.close(), 3)
        proc = state["terminado"]
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        if site.proc is not None and state["sessions"]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stop_sessions(site, state["sessions"], 15), 20)
        site.stop()
        removed = remove_site_sandboxes()
        log(
            f"cleaned up: site stopped, {removed} container(s) force-removed, "
            f"{count_site_containers()} left; total {time.perf_counter() - t0:.0f}s"
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--terminado-server":
        serve_terminado(int(sys.argv[2]), sys.argv[3])
        sys.exit(0)
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        remove_site_sandboxes()
        sys.exit(130)
