"""The ``debian`` and ``debian-docker`` VM templates: debootstrap'ed bookworm on a qcow2 disk.

The tree gets systemd, Debian's cloud kernel, qemu-guest-agent and a root
autologin on the serial console; ``mkfs.ext4 -d`` turns it into a disk image
and ``qemu-img convert`` into the qcow2 base that sessions overlay.
``debian-docker`` adds Docker (20.10 with docker-compose v1 and AppArmor) and
the host's ``labsite/base`` image, loaded into the guest's ``/var/lib/docker``
at build time by a temporary dockerd (if that fails: saved as a tarball in the
disk and loaded by a first-boot unit, minutes under TCG); the template's
``ready_check`` waits until Docker answers with the image.
Used through ``python -m provisioning.images.vm_templates``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from provisioning.images.vm_templates import AGENT_PORT, PROMPT_REGEX, make_disk

log = logging.getLogger(__name__)

SUITE = "bookworm"
PACKAGES = (
    "systemd-sysv", "udev", "linux-image-cloud-amd64", "initramfs-tools", "qemu-guest-agent",
    "iproute2", "iputils-ping", "procps", "kmod", "pciutils", "e2fsprogs", "util-linux",
    "bash-completion", "less", "nano", "vim", "htop", "psmisc", "ca-certificates",
    # What the build-it-yourself labs use: a container by hand (runc, busybox), its network
    # (nftables, curl, nc), LXC, qemu-img's backing chains, and the lock-down lab's tools.
    "runc", "busybox-static", "nftables", "curl", "netcat-openbsd", "jq", "lxc", "qemu-utils",
    "uidmap", "libcap2-bin", "strace",
)  # fmt: skip
DOCKER_PACKAGES = ("docker.io", "docker-compose", "apparmor", "iptables")
#: Images saved from the host's Docker into the disk, loaded at first boot.
DOCKER_IMAGES = ("labsite/base:latest",)
CMDLINE = "root=/dev/vda console=ttyS0 quiet"
AUTOLOGIN = """\
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear %I 115200 xterm-256color
"""
BASHRC = r"""
export LANG=C.UTF-8
PS1='\[\e[1;32m\]\u@\h\[\e[0m\]:\[\e[1;34m\]\w\[\e[0m\]\$ '
alias ls='ls --color=auto'
alias ll='ls -l --color=auto'
"""
GROWFS_UNIT = """\
[Unit]
Description=Grow the root file system to the size of the session's disk
DefaultDependencies=no
After=systemd-remount-fs.service
Before=local-fs.target

[Service]
Type=oneshot
ExecStart=/sbin/resize2fs /dev/vda

[Install]
WantedBy=local-fs.target
"""
IMAGES_UNIT = """\
[Unit]
Description=Load the lab's container images baked into the disk
After=docker.service
Requires=docker.service
ConditionPathExistsGlob=/var/lib/labsite/images/*.tar

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/labsite-load-images

[Install]
WantedBy=multi-user.target
"""
LOAD_IMAGES = """\
#!/bin/sh
# Load every image tarball baked into the disk, once.
for f in /var/lib/labsite/images/*.tar; do
    docker load -q -i "$f" && rm -f "$f"
done
"""
JOURNALD = "[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n"
#: Timers and services that only slow a short-lived lab guest down.
MASKED = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service",
    "fstrim.timer", "man-db.timer", "getty@tty1.service", "systemd-journal-flush.service",
)  # fmt: skip
DOCKER_READY = "docker image inspect labsite/base:latest >/dev/null 2>&1"


def debian_recipe(*, docker: bool) -> list[object]:
    parts: list[object] = [SUITE, PACKAGES, CMDLINE, AUTOLOGIN, BASHRC, GROWFS_UNIT, JOURNALD]
    parts += [MASKED, PROMPT_REGEX]
    if docker:
        parts += [DOCKER_PACKAGES, IMAGES_UNIT, LOAD_IMAGES, DOCKER_READY, "preload"]
        parts += [_image_id(ref) for ref in DOCKER_IMAGES]
    return parts


def build_debian(stage: Path, cache: Path, *, docker: bool) -> dict[str, Any]:
    mirror = os.environ.get("LABSITE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    packages = PACKAGES + (DOCKER_PACKAGES if docker else ())
    with tempfile.TemporaryDirectory(prefix="vm-debian-", dir=stage.parent) as tmp:
        root = Path(tmp) / "rootfs"
        debs = cache / "debootstrap"
        debs.mkdir(parents=True, exist_ok=True)
        log.info("debootstrap %s (%d extra packages) into %s", SUITE, len(packages), root)
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
             f"--cache-dir={debs}", SUITE, str(root), mirror],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _configure(root)
        if docker:
            _configure_docker(root)
        _copy_boot(root, stage)
        _clean(root)
        size_mib = _disk_size(root, docker=docker)
        log.info("mkfs.ext4 -d (%d MiB) and qemu-img convert", size_mib)
        make_disk(root, stage / "disk.qcow2", size_mib, label="labroot")
    return {
        "kernel": "vmlinuz",
        "initrd": "initrd.img",
        "disk": "disk.qcow2",
        "disk_mib": size_mib,
        "cmdline": CMDLINE,
        "prompt": PROMPT_REGEX,
        "ready_check": DOCKER_READY if docker else "",
        "boot_timeout": 900 if docker else 300,
        "min_memory_mib": 1024 if docker else 384,
        "agent": AGENT_PORT,
    }


def _configure(root: Path) -> None:
    (root / "etc/fstab").write_text("/dev/vda / ext4 defaults,discard 0 1\n")
    (root / "etc/hostname").write_text("lab\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    (root / "etc/machine-id").write_text("")  # each guest makes its own at boot
    _write(root / "etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf", AUTOLOGIN)
    _write(root / "etc/systemd/journald.conf.d/labsite.conf", JOURNALD)
    _write(root / "etc/systemd/system/labsite-growfs.service", GROWFS_UNIT)
    _enable(root, "labsite-growfs.service", "local-fs.target")
    with (root / "root/.bashrc").open("a") as bashrc:
        bashrc.write(BASHRC)
    (root / "etc/motd").write_text("Welcome to your lab VM.\n")
    for unit in MASKED:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")


def _configure_docker(root: Path) -> None:
    """Put the lab images into the guest's Docker: preloaded if possible, else as tarballs."""
    _write(root / "etc/systemd/system/labsite-images.service", IMAGES_UNIT)
    _write(root / "usr/local/sbin/labsite-load-images", LOAD_IMAGES)
    (root / "usr/local/sbin/labsite-load-images").chmod(0o755)
    _enable(root, "labsite-images.service", "multi-user.target")
    images = root / "var/lib/labsite/images"
    images.mkdir(parents=True, exist_ok=True)
    present = [ref for ref in DOCKER_IMAGES if _image_id(ref)]
    for ref in set(DOCKER_IMAGES) - set(present):
        log.warning("the host's Docker has no %s: the template is built without it", ref)
    try:
        _preload(root / "var/lib/docker", present)
        return
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("preloading into the guest's Docker failed (%s): baking tarballs", exc)
        shutil.rmtree(root / "var/lib/docker", ignore_errors=True)
    for ref in present:
        target = images / (ref.replace("/", "_").replace(":", "_") + ".tar")
        log.info("docker save %s", ref)
        subprocess.run(["docker", "save", "-o", str(target), ref], check=True)


def _preload(data_root: Path, refs: list[str]) -> None:
    """``docker load`` ``refs`` into ``data_root`` with a temporary dockerd on the host.

    The host's docker.io is the guest's (Debian's 20.10, overlay2 on ext4), so the
    guest's Docker starts with the images in place instead of spending minutes
    under TCG unpacking a tarball at every boot.
    """
    if not refs:
        return
    with tempfile.TemporaryDirectory(prefix="dockerd-") as tmp:
        sock = f"unix://{tmp}/docker.sock"
        # Its own network namespace: a dockerd started with --bridge=none deletes the
        # host's docker0, breaking the host's Docker Engine for every later container.
        daemon = subprocess.Popen(
            ["unshare", "--net", "--",
             "dockerd", "--data-root", str(data_root), "--exec-root", f"{tmp}/exec",
             "--pidfile", f"{tmp}/dockerd.pid", "-H", sock, "--bridge=none",
             "--iptables=false", "--ip-masq=false", "--storage-driver=overlay2",
             "--containerd-namespace=labsite-build",
             "--containerd-plugins-namespace=labsite-build-plugins"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_for_docker(sock, daemon)
            for ref in refs:
                log.info("preloading %s into the guest's Docker", ref)
                save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
                subprocess.run(["docker", "-H", sock, "load", "-q"], stdin=save.stdout,
                               check=True, stdout=subprocess.DEVNULL)  # fmt: skip
                if save.wait() != 0:
                    raise subprocess.SubprocessError(f"docker save {ref} failed")
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    for leftover in ("network", "containers", "tmp", "runtimes"):
        shutil.rmtree(data_root / leftover, ignore_errors=True)


def _wait_for_docker(sock: str, daemon: subprocess.Popen[bytes]) -> None:
    for _ in range(120):
        if daemon.poll() is not None:
            raise subprocess.SubprocessError("the temporary dockerd exited")
        probe = subprocess.run(["docker", "-H", sock, "info"], capture_output=True)
        if probe.returncode == 0:
            return
        time.sleep(0.25)
    raise subprocess.SubprocessError("the temporary dockerd did not answer in 30 s")


def _image_id(ref: str) -> str:
    try:
        done = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", ref],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _copy_boot(root: Path, stage: Path) -> None:
    (kernel,) = sorted((root / "boot").glob("vmlinuz-*"))
    (initrd,) = sorted((root / "boot").glob("initrd.img-*"))
    shutil.copy(kernel, stage / "vmlinuz")
    shutil.copy(initrd, stage / "initrd.img")


def _clean(root: Path) -> None:
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        path = root / junk
        if path.exists():
            shutil.rmtree(path)
            path.mkdir()


def _disk_size(root: Path, *, docker: bool) -> int:
    used = subprocess.run(["du", "-sxm", str(root)], check=True, capture_output=True,
                          text=True).stdout.split()[0]  # fmt: skip
    headroom = 2048 if docker else 1024
    return ((int(used) * 5 // 4 + headroom) // 256 + 1) * 256


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _enable(root: Path, unit: str, target: str) -> None:
    wants = root / "etc/systemd/system" / f"{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / unit
    link.unlink(missing_ok=True)
    link.symlink_to(f"/etc/systemd/system/{unit}")
