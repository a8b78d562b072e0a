"""Pure builders: a SandboxSpec in, the Docker API's arguments out. Tested without an engine."""

from __future__ import annotations

import hashlib
from typing import Any

from provisioning.base import SandboxSpec

#: Every lab container runs this as PID 1 (under docker-init, which reaps zombies);
#: shells live in tmux sessions started on demand by the terminal.
MAIN_COMMAND = ["sleep", "infinity"]
LOG_OPTIONS = {"max-size": "1m", "max-file": "1"}
TMP_SIZE = "64m"


def container_config(
    spec: SandboxSpec,
    *,
    network: str | None,
    tools_dir: str | None = None,
    hard_disk_quota: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for ``APIClient.create_container`` (host config included).

    Confinement follows the CIS Docker Benchmark's runtime section: no privileges, no
    capabilities beyond the lab's, no new privileges, default seccomp, limits on pids,
    memory (no swap) and CPU, private cgroup and IPC namespaces, capped logs. The
    platform's own tools (``tools_dir``) are mounted read-only at ``TOOLS_MOUNT`` for
    checks; ``hard_disk_quota`` asks the storage driver to cap the container's layer.
    """
    res = spec.resources
    memory = f"{res.memory_mib}m"
    host_config: dict[str, Any] = {
        "init": True,
        "privileged": False,
        "cap_drop": ["ALL"],
        "cap_add": sorted(spec.capabilities),
        "security_opt": ["no-new-privileges:true"],
        "pids_limit": res.pids,
        "mem_limit": memory,
        "memswap_limit": memory,
        "oom_kill_disable": False,
        "nano_cpus": int(res.cpus * 1e9),
        "cgroupns": "private",
        "ipc_mode": "private",
        "network_mode": network or "none",
        "log_config": {"Type": "json-file", "Config": LOG_OPTIONS},
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={TMP_SIZE}"},
        "ulimits": [{"name": "nofile", "soft": 1024, "hard": 1024}],
        "restart_policy": {"Name": "no"},
    }
    if spec.runtime:
        host_config["runtime"] = spec.runtime
    if tools_dir:
        host_config["binds"] = {tools_dir: {"bind": TOOLS_MOUNT, "mode": "ro"}}
    if hard_disk_quota:
        host_config["storage_opt"] = {"size": f"{res.disk_mib}M"}
    return {
        "image": spec.image,
        "name": spec.name,
        "command": MAIN_COMMAND,
        "hostname": spec.hostname,
        "labels": dict(spec.labels),
        "working_dir": "/root",
        "environment": {"LANG": "C.UTF-8", "TERM": "xterm-256color", "HOME": "/root"},
        "stop_signal": "SIGKILL",
        "host_config": host_config,
    }


def network_name(spec_name: str) -> str:
    return f"{spec_name}-net"


def bridge_name(spec_name: str) -> str:
    """Linux interface names stop at 15 bytes; the ``lab`` prefix lets one firewall rule
    (``-i lab+``) cover every lab network on the host."""
    return "lab" + hashlib.sha256(spec_name.encode()).hexdigest()[:11]


def network_config(spec: SandboxSpec) -> dict[str, Any]:
    """Arguments for ``APIClient.create_network``: one bridge per session, so no two
    students' containers ever share a segment; Docker isolates bridges from each other."""
    return {
        "name": network_name(spec.name),
        "driver": "bridge",
        "labels": dict(spec.labels),
        "options": {
            "com.docker.network.bridge.name": bridge_name(spec.name),
            "com.docker.network.bridge.enable_icc": "false",
        },
    }


def terminal_command(tab: int) -> list[str]:
    """Attach to (or create) tmux session ``t<tab>`` as a control client, in one exec:

    1. print our TTY, so the backend can later detach exactly this client (closing the
       socket alone would leave the client, and the exec, running);
    2. wait (up to 2 s) for the backend to size the TTY, and read the size;
    3. become a tmux control client (``-CC``) of that size. ``DockerTerminal`` speaks
       tmux's control protocol and asks for the replay itself (history and screen).
    """
    script = (
        'printf "%s\\n" "$(tty)"; '
        'i=0; while [ "$(stty size 2>/dev/null)" = "0 0" ] && [ $i -lt 40 ]; '
        "do sleep 0.05; i=$((i+1)); done; "
        "size=$(stty size 2>/dev/null); rows=${size% *}; cols=${size#* }; "
        '[ "${rows:-0}" -gt 0 ] 2>/dev/null && [ "${cols:-0}" -gt 0 ] 2>/dev/null '
        "|| { rows=24; cols=80; }; "
        # Made first, detached, until it is there: two clients racing through
        # `new-session -A` both find no session and the second fails ("duplicate
        # session"); two tabs opened at once in a fresh sandbox can both start a tmux
        # server, and the session just made can be missing when the attach comes.
        'i=0; until tmux has-session -t "t$1" 2>/dev/null || [ $i -ge 40 ]; do '
        'tmux -u new-session -d -s "t$1" -x "$cols" -y "$rows" 2>/dev/null || sleep 0.05; '
        "i=$((i+1)); done; "
        'exec tmux -u -CC attach-session -t "t$1" \\; refresh-client -C "${cols}x${rows}"'
    )
    return ["sh", "-c", script, "labterm", str(tab)]


#: Where the platform's static tools (busybox and its applets) appear in every lab
#: container, read-only: checks run with these, never with the image's own ``sh``.
TOOLS_MOUNT = "/.labsite"
TOOLS_BIN = f"{TOOLS_MOUNT}/bin"
#: Checks see the platform's tools first, then the image's (for tools busybox lacks).
CHECK_PATH = f"{TOOLS_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Exit status of busybox's ``timeout -s KILL`` when the command ran too long.
TIMED_OUT = 137


def script_command(script: str, timeout: float, marker: str) -> list[str]:
    """Run ``script`` with the platform's own ``timeout`` and ``sh``, KILLed at the deadline.

    ``marker`` (``$0`` of the shell) names the run, so the backend can find and kill what
    is left of it if the sandbox holds the deadline up. The script runs through ``eval``
    so that the shell stays the parent of everything it starts (a ``sh -c`` would exec its
    last command and lose the marker), and killing its process group reaches them all.
    """
    seconds = str(max(1, int(timeout)))
    return [
        f"{TOOLS_BIN}/timeout", "-s", "KILL", seconds,
        f"{TOOLS_BIN}/sh", "-c", 'eval "$1"', marker, script,
    ]  # fmt: skip


#: Written by the backend once a start is complete (setup included). The student never
#: has a terminal before that, so they cannot make a half-made sandbox look finished.
READY_MARK = "/run/labsite-ready"


def mark_ready_command() -> list[str]:
    return [f"{TOOLS_BIN}/touch", READY_MARK]


def is_ready_command() -> list[str]:
    return [f"{TOOLS_BIN}/sh", "-c", f"test -e {READY_MARK} && echo ready"]


def kill_command(marker: str) -> list[str]:
    """Kill every process whose command line carries ``marker``, with its process group
    (what it started), using the platform's tools (busybox has no pkill)."""
    script = (
        'for p in /proc/[0-9]*; do pid="${p#/proc/}"; [ "$pid" = "$$" ] && continue; '
        # busybox grep -q misses matches in files with NUL bytes, hence tr.
        'tr "\\0" " " < "$p/cmdline" 2>/dev/null | grep -qF -- "$1" && '
        'kill -9 "$pid" "-$pid" 2>/dev/null; done; true'
    )
    return [f"{TOOLS_BIN}/sh", "-c", script, "labkill", marker]
