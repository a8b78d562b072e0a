"""Build the ``labsite/base`` container image from Debian packages, with no registry.

debootstrap makes a minimal Debian tree, ``docker import`` turns it into an image.
The image is tagged with a hash of this recipe, so it is built once and rebuilt only
when the recipe changes. Run as ``python -m provisioning.images.docker_base``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

REPOSITORY = "labsite/base"
SUITE = "bookworm"
#: What a student expects in a lab shell, plus tmux, which keeps shells alive across reconnects.
PACKAGES = (
    "bash", "bash-completion", "procps", "iproute2", "iputils-ping", "util-linux", "less",
    "vim", "htop", "nano", "curl", "ca-certificates", "tmux", "netcat-openbsd", "psmisc",
    "strace", "jq", "file", "locales",
)  # fmt: skip
#: Shell niceties for the student: a coloured prompt, UTF-8, tmux without a status bar.
#: The browser attaches as a tmux *control* client (``tmux -CC``, see
#: ``provisioning.docker.terminal``): tmux forwards the programs' own bytes instead of
#: redrawing its screen, so it needs no terminal overrides; ``history-limit`` is what a
#: reconnect can replay.
BASHRC = r"""
export LANG=C.UTF-8
export TERM=xterm-256color
PS1='\[\e[1;32m\]\u@\h\[\e[0m\]:\[\e[1;34m\]\w\[\e[0m\]\$ '
alias ls='ls --color=auto'
alias ll='ls -l --color=auto'
"""
TMUX_CONF = """
set -g status off
set -g prefix None
unbind-key -a
set -g escape-time 0
set -g history-limit 10000
set -g default-terminal "tmux-256color"
set -g window-size latest
set -g aggressive-resize on
set -g default-command "cd /root; exec bash -l"
"""
IMAGE_CONFIG = (
    "ENV LANG=C.UTF-8",
    "ENV TERM=xterm-256color",
    "WORKDIR /root",
    'CMD ["sleep", "infinity"]',
)


def recipe_tag() -> str:
    recipe = json.dumps([SUITE, PACKAGES, BASHRC, TMUX_CONF, IMAGE_CONFIG])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def image_ref() -> str:
    return f"{REPOSITORY}:{recipe_tag()}"


def image_exists(ref: str) -> bool:
    probe = subprocess.run(["docker", "image", "inspect", ref], capture_output=True)
    return probe.returncode == 0


def build(mirror: str = "http://deb.debian.org/debian", force: bool = False) -> str:
    """Build the image unless the current recipe's tag exists; return its reference."""
    ref = image_ref()
    if image_exists(ref) and not force:
        log.info("image %s is up to date", ref)
        _tag_latest(ref)
        return ref
    with tempfile.TemporaryDirectory(prefix="labsite-base-") as tmp:
        root = Path(tmp) / "rootfs"
        log.info("debootstrap %s into %s (a minute or two)", SUITE, root)
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             SUITE, str(root), mirror],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _customise(root)
        log.info("docker import as %s", ref)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        changes = [arg for line in IMAGE_CONFIG for arg in ("--change", line)]
        subprocess.run(["docker", "import", *changes, "-", ref], stdin=tar.stdout, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        if tar.wait() != 0:
            raise RuntimeError("tar of the debootstrap tree failed")
    _tag_latest(ref)
    return ref


def _customise(root: Path) -> None:
    (root / "root" / ".bashrc").write_text(BASHRC)
    (root / "etc" / "tmux.conf").write_text(TMUX_CONF)
    (root / "root" / "answers").mkdir(exist_ok=True)
    (root / "etc" / "motd").write_text("欢迎来到实验环境。 Welcome to your lab sandbox.\n")
    # Package caches and manuals only make the image bigger for every student.
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        path = root / junk
        if path.exists():
            shutil.rmtree(path)
            path.mkdir()


def _tag_latest(ref: str) -> None:
    subprocess.run(["docker", "tag", ref, f"{REPOSITORY}:latest"], check=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    mirror = os.environ.get("LABSITE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    print(build(mirror, force="--force" in sys.argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
