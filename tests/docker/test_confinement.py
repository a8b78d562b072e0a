"""What an untrusted student can do inside a lab container, and what they cannot."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import subprocess
import threading
import time

import pytest

from provisioning.base import (
    LABEL_OWNER,
    LABEL_SESSION,
    LABEL_SITE,
    Resources,
    SandboxSpec,
)
from provisioning.docker import DockerBackend
from tests.conftest import TEST_SITE

pytestmark = pytest.mark.docker
START_TIMEOUT = 120


def spec(name: str, **overrides) -> SandboxSpec:
    fields = {
        "name": f"{TEST_SITE}-{name}",
        "image": "labsite/base",
        "labels": {LABEL_SITE: TEST_SITE, LABEL_SESSION: name, LABEL_OWNER: "alice"},
        "resources": Resources(cpus=0.5, memory_mib=128, pids=64),
    }
    return SandboxSpec(**(fields | overrides))


@pytest.fixture
async def backend():
    backend = DockerBackend(site=TEST_SITE)
    yield backend
    await backend.close()


def run(docker_client, name: str, script: str):
    result = docker_client.containers.get(name).exec_run(["sh", "-c", script])
    return result.exit_code, result.output.decode(errors="replace")


def status_field(docker_client, name: str, field: str) -> str:
    _code, out = run(docker_client, name, f"grep ^{field}: /proc/1/status")
    return out.split()[1]


async def test_no_capabilities_no_new_privileges_seccomp_on(backend, docker_client):
    box = await backend.start(spec("caps"), timeout=START_TIMEOUT)
    assert status_field(docker_client, box.name, "CapEff") == "0000000000000000"
    assert status_field(docker_client, box.name, "CapBnd") == "0000000000000000"
    assert status_field(docker_client, box.name, "NoNewPrivs") == "1"
    assert status_field(docker_client, box.name, "Seccomp") == "2"
    code, out = run(docker_client, box.name, "chown nobody /etc/hostname")
    assert code != 0 and "Operation not permitted" in out


async def test_declared_capability_is_the_only_one(backend, docker_client):
    box = await backend.start(spec("netadmin", capabilities=("NET_ADMIN",)), timeout=START_TIMEOUT)
    assert int(status_field(docker_client, box.name, "CapBnd"), 16) == 1 << 12  # CAP_NET_ADMIN


async def test_pids_limit_stops_a_fork_bomb(backend, docker_client):
    box = await backend.start(spec("forkbomb"), timeout=START_TIMEOUT)
    container = docker_client.containers.get(box.name)
    _code, out = run(
        docker_client, box.name, "for i in $(seq 200); do sleep 3 & done 2>&1; echo done"
    )
    assert "fork" in out.lower() or "resource temporarily unavailable" in out.lower()
    processes = container.top()["Processes"]  # counted from the host: the shell cannot fork
    assert 0 < len(processes) <= 64
    await asyncio.sleep(4)  # the sleeps end; the container was never at risk
    assert run(docker_client, box.name, "echo alive")[1].strip() == "alive"


async def test_memory_limit_kills_only_the_greedy_process(backend, docker_client):
    box = await backend.start(spec("oom"), timeout=START_TIMEOUT)
    code, _out = run(docker_client, box.name, "head -c 400m /dev/zero | tail > /dev/null")
    assert code != 0  # tail was killed by the OOM killer inside the container's cgroup
    assert docker_client.containers.get(box.name).status == "running"
    v1, v2 = "/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"
    _code, oom = run(docker_client, box.name, f"cat {v1} {v2} 2>/dev/null")
    kills = [int(line.split()[1]) for line in oom.splitlines() if line.startswith("oom_kill ")]
    assert kills and kills[0] >= 1


async def test_no_docker_socket_and_capped_logs_and_labels(backend, docker_client):
    box = await backend.start(spec("misc"), timeout=START_TIMEOUT)
    code, _ = run(
        docker_client, box.name, "test -e /var/run/docker.sock || test -e /run/docker.sock"
    )
    assert code == 1
    attrs = docker_client.containers.get(box.name).attrs
    assert attrs["HostConfig"]["Privileged"] is False
    assert attrs["HostConfig"]["LogConfig"]["Config"]["max-size"] == "1m"
    assert attrs["HostConfig"]["Init"] is True
    assert attrs["HostConfig"]["Memory"] == attrs["HostConfig"]["MemorySwap"] == 128 * 2**20
    assert attrs["Config"]["Labels"][LABEL_OWNER] == "alice"


async def test_start_is_idempotent(backend, docker_client):
    first = await backend.start(spec("twice"), timeout=START_TIMEOUT)
    second = await backend.start(spec("twice"), timeout=START_TIMEOUT)
    assert first.engine_id == second.engine_id


async def test_no_route_to_another_students_container(backend, docker_client):
    a = await backend.start(spec("net-a", network="isolated"), timeout=START_TIMEOUT)
    b = await backend.start(spec("net-b", network="isolated"), timeout=START_TIMEOUT)
    b_ip = _ip(docker_client, b.name)
    docker_client.containers.get(b.name).exec_run(["sh", "-c", "nc -lk -p 8080 >/dev/null"],
                                                  detach=True)  # fmt: skip
    # The listener works from inside B, so a refusal from A is the network's doing.
    assert run(docker_client, b.name, "sleep 0.5; nc -z -w 2 127.0.0.1 8080")[0] == 0
    assert run(docker_client, a.name, f"nc -z -w 2 {b_ip} 8080")[0] != 0


async def test_no_route_to_the_hosts_services(backend, docker_client):
    a = await backend.start(spec("net-host", network="isolated"), timeout=START_TIMEOUT)
    gateway = _gateway(docker_client, a.name)
    server = socket.create_server(("0.0.0.0", 0))  # a "host service" on every address
    port = server.getsockname()[1]
    threading.Thread(target=lambda: server.accept(), daemon=True).start()
    try:
        with socket.create_connection((gateway, port), timeout=2):
            pass  # reachable from the host itself: the service is really listening
        code, _ = run(docker_client, a.name, f"nc -z -w 2 {gateway} {port}")
        assert code != 0
    finally:
        server.close()


def _ip(docker_client, name: str) -> str:
    networks = docker_client.containers.get(name).attrs["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"]


def _gateway(docker_client, name: str) -> str:
    networks = docker_client.containers.get(name).attrs["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["Gateway"]


@pytest.fixture
def private_network_service():
    """A TCP service on a private address (10.213.x.2) in a network namespace of our own,
    routed from the host through a veth pair: what a campus network or a cloud's metadata
    service looks like to a lab."""
    ns, suffix = f"labpriv{os.getpid() % 10000}", os.getpid() % 250 + 1
    host_if, ns_if = f"lp{suffix}h", f"lp{suffix}n"
    host_ip, service_ip = f"10.213.{suffix}.1", f"10.213.{suffix}.2"
    sh = functools.partial(subprocess.run, check=True, capture_output=True)
    sh(["ip", "netns", "add", ns])
    listener = None
    try:
        sh(["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if])
        sh(["ip", "link", "set", ns_if, "netns", ns])
        sh(["ip", "addr", "add", f"{host_ip}/24", "dev", host_if])
        sh(["ip", "link", "set", host_if, "up"])
        for cmd in (
            ["addr", "add", f"{service_ip}/24", "dev", ns_if],
            ["link", "set", ns_if, "up"],
            ["link", "set", "lo", "up"],
            ["route", "add", "default", "via", host_ip],
        ):
            sh(["ip", "netns", "exec", ns, "ip", *cmd])
        listener = subprocess.Popen(
            ["ip", "netns", "exec", ns, "/bin/busybox", "nc", "-ll", "-p", "8080", "-e", "true"]
        )
        time.sleep(0.3)
        yield service_ip
    finally:
        if listener is not None:
            listener.kill()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


async def test_isolated_labs_reach_no_private_address(
    backend, docker_client, private_network_service
):
    probe = f"nc -z -w 3 {private_network_service} 8080"
    lab = await backend.start(spec("net-private", network="isolated"), timeout=START_TIMEOUT)
    # A container on Docker's default bridge reaches the service: the route is real...
    control = docker_client.containers.run(
        "labsite/base", ["sleep", "30"], detach=True, remove=True,
        labels={LABEL_SITE: TEST_SITE},
    )  # fmt: skip
    try:
        assert control.exec_run(["sh", "-c", probe]).exit_code == 0
    finally:
        control.remove(force=True)
    # ...and from the isolated lab it is dropped.
    assert run(docker_client, lab.name, probe)[0] != 0
