"""Blocking helpers on libvirt connections and domains, run in the backend's executor.

Also what a domain's libvirt state means for the site (:func:`describe_state`): one
function, so that ``status()`` and ``list_sandboxes()`` always agree.
"""

from __future__ import annotations

import logging

import libvirt

from provisioning.base import LABEL_SITE, Sandbox, SandboxError, SandboxStatus
from provisioning.libvirt.domain_xml import NS_SANDBOX, NS_STATE, parse_metadata

log = logging.getLogger(__name__)

_GONE = (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID)
_NO_METADATA = (libvirt.VIR_ERR_NO_DOMAIN_METADATA, libvirt.VIR_ERR_OPERATION_INVALID)

#: Why a shut-off domain ended (libvirt's shut-off reason), in words for the student.
_SHUTOFF_DETAIL = {
    libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: "the VM was powered off",
    libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: "the VM crashed",
    libvirt.VIR_DOMAIN_SHUTOFF_FAILED: "the VM failed to start",
    libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: "the VM was switched off on its host",
    libvirt.VIR_DOMAIN_SHUTOFF_DAEMON: "the VM was switched off on its host",
    libvirt.VIR_DOMAIN_SHUTOFF_SAVED: "the VM was switched off on its host",
    libvirt.VIR_DOMAIN_SHUTOFF_MIGRATED: "the VM was moved to another host",
    libvirt.VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT: "the VM was switched off on its host",
}
_SHUTOFF_UNKNOWN = "the VM stopped (its host may have restarted)"
#: A paused guest that nobody will resume has ended too.
_PAUSED_DETAIL = {
    libvirt.VIR_DOMAIN_PAUSED_IOERROR: "the VM stopped after a disk error on its host",
    libvirt.VIR_DOMAIN_PAUSED_CRASHED: "the VM crashed",
}


def open_connection(uri: str) -> libvirt.virConnect:
    conn = libvirt.open(uri)
    conn.setKeepAlive(5, 3)  # a dead libvirtd is noticed within ~20 s
    return conn


def connection_lost(exc: libvirt.libvirtError) -> bool:
    """Whether an error means the connection is gone (not that the operation failed)."""
    return exc.get_error_domain() in (libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE) or (
        exc.get_error_code() in (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN)
    )


def engine_error(doing: str, exc: BaseException) -> SandboxError:
    """``Could not {doing}.`` for the student; what libvirt or QEMU said goes to ``detail``."""
    detail = str(exc).strip()[:2000]
    log.warning("libvirt: could not %s: %s", doing, detail)
    return SandboxError(f"Could not {doing}.", detail=detail)


def ignore_error(_context: object, _error: object) -> None:
    """libvirt prints every error on stderr besides raising it; the exception is enough."""
    return None


def undefine_and_destroy(dom: libvirt.virDomain) -> None:
    """Forget the guest, then stop it at once; "not running" and "no such domain" are done.

    In this order a running guest never shows as shut off (EXITED) on its way out: it
    is running and transient for a moment, then gone (MISSING)."""
    for step in (dom.undefine, dom.destroy):
        try:
            step()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in _GONE:
                raise
            log.info("%s: %s (treated as done)", step.__name__, exc)


def describe_state(state: int, reason: int, ready: bool) -> tuple[SandboxStatus, str]:
    """The site's status of a domain from libvirt's ``(state, reason)``, and for an ended
    one why, in plain words. ``ready`` says whether the guest was marked usable.

    The backend defines a domain only once it runs (``createXML``, then ``defineXML``),
    so a shut-off domain always is a guest that ran and ended, never one being made."""
    if state == libvirt.VIR_DOMAIN_SHUTOFF:
        return SandboxStatus.EXITED, _SHUTOFF_DETAIL.get(reason, _SHUTOFF_UNKNOWN)
    if state == libvirt.VIR_DOMAIN_CRASHED:
        return SandboxStatus.EXITED, "the VM crashed"
    if state == libvirt.VIR_DOMAIN_PAUSED and reason in _PAUSED_DETAIL:
        return SandboxStatus.EXITED, _PAUSED_DETAIL[reason]
    return (SandboxStatus.RUNNING if ready else SandboxStatus.STARTING), ""


def starting_up(dom: libvirt.virDomain) -> bool:
    """Whether QEMU is still being started (its console has no PTY yet: opening it fails
    with VIR_ERR_OPERATION_FAILED, the code that also means "held by another stream")."""
    state, reason = dom.state()
    return bool(
        state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_STARTING_UP
    )


def is_ready(dom: libvirt.virDomain) -> bool:
    """Whether the running guest carries the "ready" mark (set once it was usable)."""
    try:
        dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS_STATE, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in _NO_METADATA:
            return False
        raise
    return True


def domain_status(dom: libvirt.virDomain) -> tuple[SandboxStatus, str]:
    """``describe_state`` of one domain now; MISSING if it vanished meanwhile."""
    try:
        state, reason = dom.state()
        live = state not in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED)
        return describe_state(state, reason, live and is_ready(dom))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return SandboxStatus.MISSING, ""
        raise


def labelled_domains(conn: libvirt.virConnect, site: str | None) -> list[Sandbox]:
    """Every domain whose metadata carries a site label (``site``'s, if given), running or
    shut off, with its status; domains that vanish while being listed are left out."""
    found = []
    for dom in conn.listAllDomains(0):
        try:
            xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS_SANDBOX, 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN_METADATA,
                                        libvirt.VIR_ERR_NO_DOMAIN):  # fmt: skip
                continue
            raise
        labels = dict(parse_metadata(xml).labels)
        if LABEL_SITE not in labels or (site is not None and labels[LABEL_SITE] != site):
            continue
        status, detail = domain_status(dom)
        if status != SandboxStatus.MISSING:
            found.append(Sandbox(dom.name(), dom.UUIDString(), labels, status, detail))
    return found
