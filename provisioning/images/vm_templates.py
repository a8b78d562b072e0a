"""Build the VM templates the libvirt backend boots, from Debian packages alone.

A template is a folder ``DIR/<name>/`` with a kernel, an initrd, optionally a
qcow2 disk (the read-only base of every session's copy-on-write overlay) and
``template.json``, which tells the backend how to boot it and how to recognise
that the guest is usable. Templates:

``tiny``
    Debian's cloud kernel and a busybox initramfs: a root shell on the serial
    console in a few seconds under TCG, and a small ext4 disk mounted on
    ``/data`` (so tiny guests have a copy-on-write overlay like the others).
    Checks run through Debian's ``qemu-guest-agent`` binary, copied into the
    initramfs with the shared libraries it needs, so every template speaks the
    same agent protocol.
``debian`` / ``debian-docker``
    debootstrap'ed bookworm on an ext4 disk; see ``vm_debian``.

Each build is skipped when ``template.json`` records the same recipe hash, and a
new build is made in ``<name>.new`` and renamed into place, so a half-built
template is never booted. Run as::

    python -m provisioning.images.vm_templates [tiny|debian|debian-docker|all] --dir DIR
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Bump to rebuild every template after a change to the shared code below.
BUILDER_VERSION = 1
TEMPLATE_FILE = "template.json"
KERNEL_PACKAGE = "linux-image-cloud-amd64"
#: A root prompt (``root@host:dir#``), colour escapes removed: the backend's sign of a shell.
PROMPT_REGEX = r"root@[\w.-]+:[^\r\n]*# ?$"
#: The agent channel's name inside the guest; qemu-guest-agent's well-known port.
AGENT_PORT = "org.qemu.guest_agent.0"
#: Kernel modules the tiny guest loads (their dependencies are added in order).
TINY_MODULES = ("virtio_pci", "virtio_console", "virtio_blk", "virtio_net", "virtio-rng")
#: Size of the tiny template's data disk.
TINY_DISK_MIB = 256
#: qemu-guest-agent and the libraries it links against (Debian bookworm names).
AGENT_PACKAGES = (
    "qemu-guest-agent", "libglib2.0-0", "libpcre2-8-0", "libudev1", "libnuma1", "liburing2",
    "libc6",
)  # fmt: skip
TINY_INITTAB = """\
::sysinit:/etc/init.d/rcS
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
"""
TINY_RCS = r"""#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
for m in $(cat /etc/modules); do insmod "/lib/modules/$m.ko" 2>/dev/null; done
name=lab
for arg in $(cat /proc/cmdline); do
    case "$arg" in systemd.hostname=*) name="${arg#systemd.hostname=}" ;; esac
done
hostname "$name"
ip link set lo up
if [ -b /dev/vda ]; then mkdir -p /data && mount -t ext4 /dev/vda /data; fi
for port in /sys/class/virtio-ports/*; do
    if [ "$(cat "$port/name" 2>/dev/null)" = "org.qemu.guest_agent.0" ]; then
        /usr/sbin/qemu-ga --method=virtio-serial --path="/dev/${port##*/}" \
            --statedir=/run --pidfile=/run/qemu-ga.pid --daemonize
    fi
done
"""
TINY_PROFILE = r"""export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=xterm-256color LANG=C.UTF-8
export PS1='\[\e[1;32m\]\u@\h\[\e[0m\]:\[\e[1;34m\]\w\[\e[0m\]\# '
cd /root
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", choices=[*BUILDERS, "all"], nargs="?", default="all")
    parser.add_argument("--dir", type=Path, default=Path("var/vm/templates"))
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    names = list(BUILDERS) if args.template == "all" else [args.template]
    for name in names:
        print(build(name, args.dir, force=args.force))
    return 0


def build(name: str, directory: Path, *, force: bool = False) -> Path:
    """Build template ``name`` under ``directory`` unless it is up to date; return its folder."""
    recipe_of, builder = BUILDERS[name]
    directory = directory.resolve()
    recipe = recipe_hash(recipe_of())
    final = directory / name
    if not force and read_template(final).get("recipe") == recipe:
        log.info("template %s is up to date (%s)", name, recipe)
        return final
    directory.mkdir(parents=True, exist_ok=True)
    stage = directory / f"{name}.new"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    log.info("building template %s in %s", name, stage)
    info = builder(stage, directory / ".cache")
    info.update(name=name, recipe=recipe)
    (stage / TEMPLATE_FILE).write_text(json.dumps(info, indent=2) + "\n")
    old = directory / f"{name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    stage.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    log.info("template %s ready in %s", name, final)
    return final


def read_template(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / TEMPLATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recipe_hash(parts: Iterable[object]) -> str:
    text = json.dumps([BUILDER_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- Debian packages -------------------------------------------------------


def download(cache: Path, packages: Iterable[str]) -> list[Path]:
    """``apt-get download`` each package into ``cache`` (once) and return the .deb paths."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    wanted = list(packages)
    missing = [p for p in wanted if not _find_deb(debs, p)]
    if missing:
        log.info("apt-get download %s", " ".join(missing))
        command = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *missing]
        if subprocess.run(command, cwd=debs, stdout=subprocess.DEVNULL).returncode != 0:
            log.info("apt-get download failed: updating the package lists once and retrying")
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(command, cwd=debs, check=True, stdout=subprocess.DEVNULL)
    return [_find_deb(debs, p) or _not_found(p) for p in wanted]


def _find_deb(debs: Path, package: str) -> Path | None:
    found = sorted(debs.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def _not_found(package: str) -> Path:
    raise RuntimeError(f"apt-get download did not produce {package}")


def extract(debs: Iterable[Path], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)


def kernel_tree(cache: Path) -> Path:
    """Download and unpack Debian's cloud kernel; return the unpacked tree."""
    (meta,) = download(cache, [KERNEL_PACKAGE])
    depends = subprocess.run(["dpkg-deb", "-f", str(meta), "Depends"], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
    match = re.search(r"(linux-image-[\w.+-]+-cloud-amd64)", depends)
    if not match:
        raise RuntimeError(f"cannot find the versioned kernel in {depends!r}")
    (image,) = download(cache, [match.group(1)])
    tree = cache / "kernel" / image.stem
    if not (tree / "boot").is_dir():
        shutil.rmtree(tree, ignore_errors=True)
        extract([image], tree)
    return tree


def kernel_image(tree: Path) -> Path:
    (vmlinuz,) = sorted((tree / "boot").glob("vmlinuz-*"))
    return vmlinuz


def module_closure(tree: Path, names: Iterable[str]) -> list[Path]:
    """The module files for ``names``, each after the modules it depends on."""
    files = {p.name.removesuffix(".ko"): p for p in (tree / "lib/modules").rglob("*.ko")}
    ordered: list[Path] = []

    def visit(name: str) -> None:
        path = files.get(name) or files.get(name.replace("_", "-"))
        if path is None:
            raise RuntimeError(f"kernel module {name} not in the kernel package")
        if path in ordered:
            return
        deps = re.search(rb"depends=([\w,-]*)\x00", path.read_bytes())
        for dep in filter(None, (deps.group(1).decode() if deps else "").split(",")):
            visit(dep)
        ordered.append(path)

    for name in names:
        visit(name)
    return ordered


# --- tiny ---------------------------------------------------------------------


def tiny_recipe() -> list[object]:
    return [KERNEL_PACKAGE, TINY_MODULES, AGENT_PACKAGES, TINY_INITTAB, TINY_RCS, TINY_PROFILE,
            TINY_DISK_MIB]  # fmt: skip


def build_tiny(stage: Path, cache: Path) -> dict[str, Any]:
    tree = kernel_tree(cache)
    shutil.copy(kernel_image(tree), stage / "vmlinuz")
    with tempfile.TemporaryDirectory(prefix="tiny-initramfs-") as tmp:
        root = Path(tmp)
        _tiny_busybox(root, cache)
        _tiny_modules(root, tree)
        _tiny_agent(root, cache)
        _tiny_files(root)
        write_cpio(root, stage / "initrd.img")
    data = Path(tempfile.mkdtemp(prefix="tiny-data-", dir=stage))
    (data / "README").write_text("This disk is yours for the length of the lab session.\n")
    make_disk(data, stage / "disk.qcow2", TINY_DISK_MIB, label="labdata")
    shutil.rmtree(data)
    return {
        "kernel": "vmlinuz",
        "initrd": "initrd.img",
        "disk": "disk.qcow2",
        "disk_mib": TINY_DISK_MIB,
        "cmdline": "console=ttyS0 quiet panic=-1",
        "prompt": PROMPT_REGEX,
        "ready_check": "",
        "boot_timeout": 120,
        "min_memory_mib": 128,
        "agent": AGENT_PORT,
    }


def _tiny_busybox(root: Path, cache: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        extract(download(cache, ["busybox-static"]), Path(tmp))
        busybox = root / "bin/busybox"
        busybox.parent.mkdir(parents=True)
        shutil.copy(Path(tmp) / "bin/busybox", busybox)
    applets = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()  # fmt: skip
    for applet in applets:
        link = root / applet
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to("/bin/busybox")
    (root / "init").symlink_to("/bin/busybox")


def _tiny_modules(root: Path, tree: Path) -> None:
    target = root / "lib/modules"
    target.mkdir(parents=True)
    order = []
    for module in module_closure(tree, TINY_MODULES):
        shutil.copy(module, target / module.name)
        order.append(module.name.removesuffix(".ko"))
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/modules").write_text("\n".join(order) + "\n")


def _tiny_agent(root: Path, cache: Path) -> None:
    """Copy qemu-ga and the shared libraries it needs; prove it runs with ``--version``."""
    with tempfile.TemporaryDirectory() as tmp:
        sysroot = Path(tmp)
        extract(download(cache, AGENT_PACKAGES), sysroot)
        (root / "usr/sbin").mkdir(parents=True, exist_ok=True)
        shutil.copy(sysroot / "usr/sbin/qemu-ga", root / "usr/sbin/qemu-ga")
        libdir = root / "lib/x86_64-linux-gnu"
        libdir.mkdir(parents=True, exist_ok=True)
        for soname, lib in _needed_libraries(sysroot, sysroot / "usr/sbin/qemu-ga").items():
            shutil.copy(lib, libdir / soname)
    (root / "lib64").mkdir(exist_ok=True)
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    probe = subprocess.run(["chroot", str(root), "/usr/sbin/qemu-ga", "--version"],
                           capture_output=True, text=True)  # fmt: skip
    if probe.returncode != 0:
        raise RuntimeError(f"qemu-ga does not run in the initramfs: {probe.stderr.strip()}")


def _needed_libraries(sysroot: Path, binary: Path) -> dict[str, Path]:
    """The ELF NEEDED closure of ``binary`` by soname, resolved in ``sysroot``, plus the loader."""
    dirs = [sysroot / d for d in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64")]
    found: dict[str, Path] = {}
    todo = [binary]
    while todo:
        dynamic = subprocess.run(["readelf", "-d", str(todo.pop())], check=True,
                                 capture_output=True, text=True).stdout  # fmt: skip
        for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic):
            if soname in found:
                continue
            path = next((d / soname for d in dirs if (d / soname).exists()), None)
            if path is None:
                raise RuntimeError(f"{soname} is in none of {AGENT_PACKAGES}")
            found[soname] = path.resolve()
            todo.append(found[soname])
    loader = "ld-linux-x86-64.so.2"
    found[loader] = (sysroot / "lib/x86_64-linux-gnu" / loader).resolve()
    return found


def _tiny_files(root: Path) -> None:
    for folder in ("proc", "sys", "dev", "tmp", "run", "root", "etc/init.d", "var"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "var/run").symlink_to("/run")
    (root / "etc/inittab").write_text(TINY_INITTAB)
    rcs = root / "etc/init.d/rcS"
    rcs.write_text(TINY_RCS)
    rcs.chmod(0o755)
    (root / "etc/profile").write_text(TINY_PROFILE)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/hostname").write_text("lab\n")


def write_cpio(root: Path, target: Path) -> None:
    """Pack ``root`` as a gzip'ed newc cpio archive, the format the kernel unpacks."""
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    cpio = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=root,
                          input="\n".join(names).encode(), check=True,
                          capture_output=True).stdout  # fmt: skip
    target.write_bytes(gzip.compress(cpio, compresslevel=6, mtime=0))


def make_disk(tree: Path, target: Path, size_mib: int, *, label: str) -> None:
    """An ext4 file system holding ``tree``, as a qcow2 image at ``target``."""
    raw = target.with_suffix(".raw")
    raw.touch()  # mkfs.ext4 says "Creating regular file" otherwise
    command = ["mkfs.ext4", "-q", "-F", "-L", label, "-d", str(tree), str(raw), f"{size_mib}M"]
    subprocess.run(command, check=True)
    convert = ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(target)]
    subprocess.run(convert, check=True)
    raw.unlink()


def _debian_recipe() -> list[object]:
    from provisioning.images import vm_debian  # imports this module's helpers

    return vm_debian.debian_recipe(docker=False)


def _docker_recipe() -> list[object]:
    from provisioning.images import vm_debian

    return vm_debian.debian_recipe(docker=True)


def _build_debian(stage: Path, cache: Path) -> dict[str, Any]:
    from provisioning.images import vm_debian

    return vm_debian.build_debian(stage, cache, docker=False)


def _build_docker(stage: Path, cache: Path) -> dict[str, Any]:
    from provisioning.images import vm_debian

    return vm_debian.build_debian(stage, cache, docker=True)


Builder = Callable[[Path, Path], dict[str, Any]]
BUILDERS: dict[str, tuple[Callable[[], list[object]], Builder]] = {
    "tiny": (tiny_recipe, build_tiny),
    "debian": (_debian_recipe, _build_debian),
    "debian-docker": (_docker_recipe, _build_docker),
}


if __name__ == "__main__":
    sys.exit(main())
