"""Private Docker Engines for tests: each a dockerd in a network namespace made for it,
with its own socket, data root, exec root, pidfile and containerd, all under one directory
in /tmp. A test may stop, restart or kill one at will; the machine's own dockerd, which
other people's tests use at the same time, is never stopped, restarted or reconfigured.
Used by the fault suite (tests/faults) and the pool suite (tests/pools)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import docker

#: Network namespaces of these suites: the prefix, the pid of the pytest run, a random part.
NETNS_PREFIX = "labsite-faults-"
#: The API version of Debian's Docker 20.10; naming it lets a client exist while the
#: engine is down (``version="auto"`` would ask the engine at construction).
API_VERSION = "1.41"
BUSYBOX = "/bin/busybox"


class PrivateDockerd:
    """A dockerd of the test's own, in its own network namespace (``--bridge=none`` in the
    host's namespace would delete the host's docker0, as provisioning/images/vm_debian.py
    notes). Entered with ``nsenter --net`` rather than ``ip netns exec``, which remounts
    /sys and so hides the cgroup hierarchy dockerd needs."""

    def __init__(self) -> None:
        # A short path: containerd's sockets live under the exec root (108-byte limit).
        self.root = Path(tempfile.mkdtemp(prefix="lf-", dir="/tmp"))
        self.token = secrets.token_hex(4)  # containerd namespaces allow no "__" or "_x_"
        self.netns = f"{NETNS_PREFIX}{os.getpid()}-{self.token}"
        self.url = f"unix://{self.root}/docker.sock"
        self.log = self.root / "dockerd.log"
        self.process: subprocess.Popen | None = None
        self.client = docker.DockerClient(base_url=self.url, version=API_VERSION, timeout=30)
        subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60, extra_args: tuple[str, ...] = ()) -> None:
        """Start dockerd (``extra_args`` are added to its command line: another ``-H``, TLS);
        a restart keeps the ones given first."""
        self.extra_args = extra_args or getattr(self, "extra_args", ())
        namespace = f"labsite-faults-{self.token}"
        args = [
            "nsenter", f"--net=/run/netns/{self.netns}", "dockerd",
            "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "dockerd.pid"), "-H", self.url,
            "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
            "--storage-driver=overlay2",
            "--containerd-namespace", namespace,
            "--containerd-plugins-namespace", f"{namespace}-plugins",
            *self.extra_args,
        ]  # fmt: skip
        deadline = time.monotonic() + timeout
        for attempt in range(3):
            with self.log.open("a") as log:
                # nsenter execs dockerd: this process *is* the engine.
                self.process = subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
                )
            while time.monotonic() < deadline and self.process.poll() is None:
                if self.answers():
                    return
                time.sleep(0.2)
            if self.process.poll() is None:
                break
            # On a busy machine (the VM suite runs beside this one) dockerd gives up when its
            # containerd answers in more than a second: what it started goes, then once more.
            self._end_leftovers()
            time.sleep(1 + attempt)
        if self.process.poll() is not None:
            raise RuntimeError(f"the private dockerd exited:\n{self.log_tail()}")
        raise RuntimeError(f"the private dockerd did not answer in {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 60) -> None:
        """Stop it as an admin (or a crash-free host shutdown) would: SIGTERM, wait. Without
        live-restore, dockerd stops its containers on the way down."""
        if not self.running:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
            raise RuntimeError(f"the private dockerd ignored SIGTERM:\n{self.log_tail()}") from None

    def link_to_host(self, subnet: int) -> tuple[str, str]:
        """A veth pair from this machine into the engine's namespace: (the host's address,
        the engine's), 10.250.<subnet>.1 and .2, so it can listen on TCP as a remote host."""
        outside, inside = f"lt{self.token}h", f"lt{self.token}n"
        host_ip, engine_ip = f"10.250.{subnet}.1", f"10.250.{subnet}.2"
        for command in (
            ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside,
             "netns", self.netns],
            ["ip", "addr", "add", f"{host_ip}/30", "dev", outside],
            ["ip", "link", "set", outside, "up"],
            ["ip", "-n", self.netns, "addr", "add", f"{engine_ip}/30", "dev", inside],
            ["ip", "-n", self.netns, "link", "set", inside, "up"],
            ["ip", "-n", self.netns, "link", "set", "lo", "up"],
        ):  # fmt: skip
            subprocess.run(command, check=True, capture_output=True)
        return host_ip, engine_ip

    def answers(self) -> bool:
        try:
            return bool(self.client.ping())
        except (docker.errors.DockerException, OSError):  # requests' errors are OSErrors
            return False

    def load_busybox_image(self, repository: str, tag: str) -> None:
        self.client.api.import_image_from_data(busybox_image_tar(), repository=repository, tag=tag)

    def remove_all_containers(self) -> None:
        for container in self.client.containers.list(all=True):
            container.remove(force=True)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def destroy(self) -> None:
        try:
            if self.running:
                if self.answers():
                    self.remove_all_containers()
                self.stop()
        finally:
            self.client.close()
            self._end_leftovers()
            subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True)
            for mount in _mounts_under(self.root):
                subprocess.run(["umount", "-l", mount], capture_output=True)
            shutil.rmtree(self.root, ignore_errors=True)

    def _end_leftovers(self) -> None:
        """Whatever this engine started and left in its namespace (its containerd, if
        dockerd had to be killed): only processes in the namespace this object made."""
        listed = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True)
        for pid in (int(p) for p in listed.stdout.split()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def busybox_image_tar() -> bytes:
    """A root file system of Debian's static busybox and a link per applet, as a tar."""
    applets = subprocess.run(
        [BUSYBOX, "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in (("bin", 0o755), ("root", 0o700), ("tmp", 0o1777)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":  # a link named busybox would replace the binary itself
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buffer.getvalue()


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    # Deepest first, so a parent is unmounted after what is mounted inside it.
    return sorted((p for p in points if p.startswith(f"{root}/")), key=len, reverse=True)


def remove_netns_of_dead_runs() -> None:
    """Namespaces a killed earlier run left behind (their pytest process is gone). One
    with processes still in it is left alone and reported: it is not ours to end."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.strip() else ""
        match = re.fullmatch(rf"{NETNS_PREFIX}(\d+)-\w+", name)
        if not match or Path(f"/proc/{match[1]}").exists():
            continue
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        if pids.stdout.strip():
            print(f"netns {name} of a dead run still has processes {pids.stdout.split()}")
            continue
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
