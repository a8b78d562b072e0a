"""The libvirt backend: sandboxes as QEMU guests (KVM where it works, TCG elsewhere).

Modules, in the order a reader needs them: ``backend`` (the ``Backend`` contract),
``domain_xml`` (pure XML builders), ``console`` (serial console streams, replay, and
who holds a console), ``agent`` (checks through qemu-guest-agent; see docs/vm-checks.md),
``domains`` (what a domain's state means), ``detect`` (KVM or TCG), ``host`` (overlays,
logs, networks on the libvirt host), ``events`` (libvirt events on asyncio).
"""

from provisioning.libvirt.backend import LibvirtBackend

__all__ = ["LibvirtBackend"]
