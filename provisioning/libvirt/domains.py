"""Blocking helpers on libvirt connections and domains, run in the backend's executor."""

from __future__ import annotations

import logging

import libvirt

from provisioning.base import LABEL_SITE, Sandbox, SandboxError
from provisioning.libvirt.domain_xml import NS_SANDBOX, parse_metadata

log = logging.getLogger(__name__)

_GONE = (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID)


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
    log.warning("libvirt: could not %s: %s", doing, exc)
    return SandboxError(f"Could not {doing}: {str(exc).strip()[:300]}")


def ignore_error(_context: object, _error: object) -> None:
    """libvirt prints every error on stderr besides raising it; the exception is enough."""
    return None


def destroy_and_undefine(dom: libvirt.virDomain) -> None:
    """Stop the guest at once and forget it; "not running" and "no such domain" are done."""
    for step in (dom.destroy, dom.undefine):
        try:
            step()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in _GONE:
                raise
            log.info("%s: %s (treated as done)", step.__name__, exc)


def labelled_domains(conn: libvirt.virConnect, site: str | None) -> list[Sandbox]:
    """Every domain whose metadata carries a site label (``site``'s, if given)."""
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
        if LABEL_SITE in labels and (site is None or labels[LABEL_SITE] == site):
            found.append(Sandbox(dom.name(), dom.UUIDString(), labels))
    return found
