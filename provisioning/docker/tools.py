"""The platform's own tools for checks: a static busybox and its applets in one folder,
bind-mounted read-only into every lab container (``config.TOOLS_MOUNT``).

A student is root in their container and can replace ``/bin/sh``, ``timeout`` or ``grep``
there; they cannot write to a read-only bind mount, nor unmount it without
``CAP_SYS_ADMIN``, which no lab gets. Checks therefore run this busybox's ``sh`` under its
``timeout``, with its applets first on ``PATH``.

The folder must exist on the engine's host: for the local engine it is made here on first
use; for a remote engine, provision the same folder on that host (see docs/deployment).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

DEFAULT_BUSYBOX = "/bin/busybox"


def ensure_tools(tools_dir: str, busybox: str = DEFAULT_BUSYBOX) -> str:
    """Make ``tools_dir/bin`` hold a static busybox and a link per applet; idempotent."""
    bin_dir = Path(tools_dir) / "bin"
    target = bin_dir / "busybox"
    source = Path(busybox)
    if not source.is_file():
        raise FileNotFoundError(f"{busybox} is missing: install Debian's busybox-static")
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return str(bin_dir.parent)
    bin_dir.mkdir(parents=True, exist_ok=True)
    staging = bin_dir / "busybox.new"
    shutil.copyfile(source, staging)
    staging.chmod(0o755)
    os.replace(staging, target)
    applets = subprocess.run(
        [str(target), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = bin_dir / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    return str(bin_dir.parent)
