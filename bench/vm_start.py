"""Time a VM sandbox's start, phase by phase, for each template.

    python bench/vm_start.py [TEMPLATE ...] [--runs N] [--templates DIR] [--restored]

``--restored`` first builds each template's booted snapshot (docs/vm-snapshots.md),
then times starts restored from it instead of cold boots (column "mode").

Phases (seconds since ``start()`` was called), as LibvirtBackend records them:

- prepare: overlay disk and network made;
- domain: libvirt domain defined, started (paused), console attached, resumed:
  what libvirt and QEMU cost before the guest runs a single instruction;
- prompt: the serial console shows a shell prompt (the guest's boot);
- agent: qemu-guest-agent answers;
- ready: the template's services are up (Docker in debian-docker) and
  ``status()`` says running.

The guest is stopped after each run. Needs libvirtd (scripts/start-libvirtd.sh)
and built templates (python -m provisioning.images.vm_templates).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from provisioning.base import LABEL_SESSION, LABEL_SITE, Resources, SandboxSpec  # noqa: E402
from provisioning.libvirt import LibvirtBackend  # noqa: E402

#: Not "labsite-bench": a site of that name (another benchmark) would reap these guests.
SITE = "labsite-vmbench"
#: Resources per template: what a lab would ask for.
RESOURCES = {
    "tiny": Resources(cpus=1, memory_mib=256),
    "debian": Resources(cpus=1, memory_mib=512),
    "debian-docker": Resources(cpus=2, memory_mib=2048, disk_mib=4096),
}
PHASES = ("prepared", "domain_started", "prompt", "agent", "ready")
HEADERS = (
    "template",
    "virt",
    "mode",
    "run",
    "prepare",
    "domain",
    "prompt",
    "agent",
    "ready",
    "stop",
)


async def one_run(backend: LibvirtBackend, template: str, run: int) -> list[str]:
    name = f"{SITE}-{template}-{run}"
    spec = SandboxSpec(
        name=name,
        image=template,
        labels={LABEL_SITE: SITE, LABEL_SESSION: name},
        resources=RESOURCES.get(template, Resources()),
    )
    sandbox = await backend.start(spec, timeout=600)
    marks = backend.start_timings.get(name, {})
    mode = backend.start_modes.get(name, "cold")
    stopped = time.monotonic()
    await backend.stop(sandbox)
    stop_s = time.monotonic() - stopped
    cells = [f"{marks[p]:.2f}" if p in marks else "-" for p in PHASES]
    mode = mode.split(":")[0]
    return [template, backend.virt_type, mode, str(run), *cells, f"{stop_s:.2f}"]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("templates", nargs="*", default=["tiny", "debian", "debian-docker"])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=REPO / "var/vm/templates")
    parser.add_argument("--restored", action="store_true", help="restore from snapshots")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the backend does")
    args = parser.parse_args()
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    backend = LibvirtBackend(
        templates_dir=args.dir,
        overlays_dir=REPO / "var/vm/bench-overlays",
        site=SITE,
        use_snapshots=args.restored,
    )
    rows: list[list[str]] = []
    try:
        for leftover in await backend.list_sandboxes():
            await backend.stop(leftover)
        await backend.detect_virt_type()
        print(f"virt type: {backend.virt_type}; evidence: {backend.virt_evidence}", flush=True)
        for template in args.templates:
            if not (args.dir / template / "template.json").exists():
                print(f"skipping {template}: not built in {args.dir}", flush=True)
                continue
            if args.restored:
                await backend.build_snapshot(template, RESOURCES.get(template, Resources()))
            for run in range(1, args.runs + 1):
                rows.append(await one_run(backend, template, run))
                print("  ".join(rows[-1]), flush=True)
    finally:
        await backend.close()
    print_table(rows)
    return 0


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
    print()
    print("seconds since start(); domain = libvirt define+start+resume, prompt = guest boot")
    for row in (list(HEADERS), *rows):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
