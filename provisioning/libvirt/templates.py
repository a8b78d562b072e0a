"""VM templates as the backend sees them: what ``template.json`` in each folder says.

The builders live in ``provisioning.images.vm_templates``; this module only reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from provisioning.base import SandboxError

#: Control sequences (colours, cursor queries) removed before looking for a prompt.
_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass(frozen=True)
class VMTemplate:
    name: str
    folder: Path
    kernel: Path
    initrd: Path
    disk: Path | None
    cmdline: str
    prompt: re.Pattern[bytes]
    #: Shell script run through the agent; the guest is usable once it exits 0.
    ready_check: str
    boot_timeout: float
    min_memory_mib: int
    disk_mib: int

    def shows_prompt(self, output: bytes) -> bool:
        """Whether the console output ends in a shell prompt (colours removed)."""
        tail = _ESCAPES.sub(b"", output[-4096:]).rstrip(b"\r\n\x07")
        return self.prompt.search(tail) is not None


def load_template(templates_dir: Path, name: str) -> VMTemplate:
    """Read ``templates_dir/name/template.json``; SandboxError if it is not built."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise SandboxError(f"'{name}' is not a VM template name.")
    folder = templates_dir / name
    try:
        info = json.loads((folder / "template.json").read_text())
    except (OSError, ValueError) as exc:
        raise SandboxError(
            f"The VM template '{name}' is not installed on this host.", detail=str(exc)
        ) from exc
    disk = info.get("disk")
    return VMTemplate(
        name=name,
        folder=folder,
        kernel=folder / info["kernel"],
        initrd=folder / info["initrd"],
        disk=folder / disk if disk else None,
        cmdline=str(info["cmdline"]),
        prompt=re.compile(str(info["prompt"]).encode(), re.MULTILINE),
        ready_check=str(info.get("ready_check", "")),
        boot_timeout=float(info.get("boot_timeout", 300)),
        min_memory_mib=int(info.get("min_memory_mib", 128)),
        disk_mib=int(info.get("disk_mib", 0)),
    )
