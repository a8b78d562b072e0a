"""Progress messages the backends report while a sandbox starts, translated for the page.

The backends know nothing of Django and report plain English, some with a number in it
("booting the VM (12 s)"); each is matched here to a message id that makemessages sees.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext, gettext_noop

FIXED = [
    gettext_noop("Waiting for a free slot"),
    gettext_noop("checking the image"),
    gettext_noop("building the lab image"),
    gettext_noop("preparing the network"),
    gettext_noop("creating the container"),
    gettext_noop("starting the container"),
    gettext_noop("running the lab's setup"),
    gettext_noop("ready"),
    gettext_noop("checking once whether this host runs VMs with KVM"),
    gettext_noop("preparing the VM's disk"),
    gettext_noop("setting up the lab"),
    gettext_noop("waiting for the VM's agent"),
    gettext_noop("waking the VM up"),
    gettext_noop("starting the VM"),
    gettext_noop("starting the VM without hardware acceleration (slower)"),
    gettext_noop("restoring the VM from its snapshot"),
    gettext_noop("restoring the VM from its snapshot without hardware acceleration (slower)"),
]
#: The libvirt backend names the driver ("starting the VM (kvm)"); the student is told
#: what it means for them instead of its name: nothing with KVM, "slower" with plain QEMU.
_VIRT = re.compile(
    r"^(?P<phase>starting the VM|restoring the VM from its snapshot) \((?P<virt>\w+)\)$"
)
VIRT_PHASES = {  # (phase, emulated?) -> msgid, all listed in FIXED
    ("starting the VM", False): "starting the VM",
    ("starting the VM", True): "starting the VM without hardware acceleration (slower)",
    ("restoring the VM from its snapshot", False): "restoring the VM from its snapshot",
    ("restoring the VM from its snapshot", True): (
        "restoring the VM from its snapshot without hardware acceleration (slower)"
    ),
}
#: What backends say when they refuse (``SandboxError.message``), so runner can translate it.
ENGINE_MESSAGES = [
    gettext_noop("The lab environment took too long to start."),
    gettext_noop("This lab's image is not available on the lab server."),
    gettext_noop("This lab's image could not be built."),
    gettext_noop("The lab's network could not be created."),
    gettext_noop("The lab environment could not be created."),
    gettext_noop("The lab's setup did not complete."),
    gettext_noop("The sandbox is not running."),
    gettext_noop("The sandbox could not be removed."),
    gettext_noop("The lab servers cannot be reached."),
    gettext_noop("The terminal could not be attached."),
    gettext_noop("The check could not be started."),
]
#: Why a sandbox ended by itself (``Sandbox.exit_detail``), as the backends say it.
EXIT_DETAILS = [
    gettext_noop("it ran out of memory"),
    gettext_noop("the VM was powered off"),
    gettext_noop("the VM crashed"),
    gettext_noop("the VM failed to start"),
    gettext_noop("the VM was switched off on its host"),
    gettext_noop("the VM was moved to another host"),
    gettext_noop("the VM stopped (its host may have restarted)"),
    gettext_noop("the VM stopped after a disk error on its host"),
]
PATTERNS = [
    (
        re.compile(r"^its main process ended with code (?P<n>-?\d+)$"),
        gettext_noop("its main process ended with code %(n)s"),
    ),
    (re.compile(r"^booting the VM \((?P<n>\d+) s\)$"), gettext_noop("booting the VM (%(n)s s)")),
    (
        re.compile(r"^waiting for services in the VM \((?P<n>\d+) s\)$"),
        gettext_noop("waiting for services in the VM (%(n)s s)"),
    ),
]


def translate(message: str) -> str:
    """``message`` in the active language; unknown messages pass through unchanged."""
    if match := _VIRT.match(message):
        return gettext(VIRT_PHASES[match["phase"], match["virt"] == "qemu"])
    for pattern, msgid in PATTERNS:
        if match := pattern.match(message):
            return gettext(msgid) % match.groupdict()
    return gettext(message) if message else ""
