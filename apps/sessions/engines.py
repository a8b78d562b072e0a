"""The backend registry, shaped like Channels' CHANNEL_LAYERS: settings name a dotted
BACKEND path and its OPTIONS per key; each backend is built on first use and kept.

A host of a pool (apps.hosts.Host) with an endpoint of its own gets the key ``host-<pk>``:
its engine's settings entry with the host's address (and TLS files) in place of the
configured one. A host without an endpoint is the configured engine itself."""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from provisioning.base import Backend

log = logging.getLogger(__name__)
_backends: dict[str, Backend] = {}
#: The configuration each host key was built with, so an edited host gets a new backend.
_host_entries: dict[str, dict] = {}
#: Backends of edited hosts being closed in the background.
_retiring: set[asyncio.Task] = set()

#: Which registry key runs which kind of lab when no host says otherwise.
DEFAULT_KEY_FOR_KIND = {"container": "docker", "vm": "libvirt"}
#: Where a host's endpoint and TLS files go in its engine's OPTIONS.
ADDRESS_OPTION = {"docker": "base_url", "libvirt": "uri"}


def get_backend(key: str) -> Backend:
    if key not in _backends:
        _backends[key] = _build(key, _host_entries.get(key))
    return _backends[key]


async def backend_for(key: str) -> Backend:
    """``get_backend``, loading a pool host's configuration from the database first if
    this process has not seen that host yet (a web process that never placed on it)."""
    if key.startswith("host-") and key not in _host_entries:
        from apps.hosts.models import Host

        pk = key.split("-")[1]
        host = await database_sync_to_async(Host.objects.filter(pk=pk).first)()
        if host is None:
            raise ImproperlyConfigured(f"no host {key} (it was removed)")
        # A session made before an edit of the host's address reaches it where it is now.
        _host_entries[key] = host_entry(host)
        _backends.pop(key, None)
    return get_backend(key)


def register_host(host) -> str:
    """Make ``host``'s backend known under its key (which changes with its address)."""
    key = host.backend_key
    if host.endpoint and _host_entries.get(key) != (entry := host_entry(host)):
        _host_entries[key] = entry
        if old := _backends.pop(key, None):
            log.info("host %s changed; its backend is rebuilt", host.name)
            _retire(old)
    return key


def host_entry(host) -> dict:
    base = settings.LABSITE_BACKENDS.get(host.backend) or settings.LABSITE_BACKENDS.get(host.engine)
    if base is None:
        raise ImproperlyConfigured(f"host {host.name}: LABSITE_BACKENDS has no {host.backend!r}")
    options = {**base.get("OPTIONS", {}), ADDRESS_OPTION[host.engine]: host.endpoint}
    if host.engine == "docker":
        options |= {"tls_ca": host.tls_ca, "tls_cert": host.tls_cert, "tls_key": host.tls_key}
    return {"BACKEND": base["BACKEND"], "OPTIONS": options}


def _build(key: str, entry: dict | None = None) -> Backend:
    entry = entry or settings.LABSITE_BACKENDS.get(key)
    if entry is None:
        raise ImproperlyConfigured(
            f"LABSITE_BACKENDS has no {key!r} entry (known: {sorted(settings.LABSITE_BACKENDS)})"
        )
    try:
        cls = import_string(entry["BACKEND"])
    except (KeyError, ImportError) as exc:
        raise ImproperlyConfigured(f"LABSITE_BACKENDS[{key!r}]['BACKEND']: {exc}") from exc
    try:
        return cls(site=settings.LABSITE_SITE_NAME, **entry.get("OPTIONS", {}))
    except TypeError as exc:
        raise ImproperlyConfigured(f"LABSITE_BACKENDS[{key!r}]['OPTIONS']: {exc}") from exc


def _retire(backend: Backend) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    task = loop.create_task(backend.close())
    _retiring.add(task)
    task.add_done_callback(_retiring.discard)


async def close_backends() -> None:
    """Release every backend's connections; the next get_backend builds anew (tests)."""
    backends = list(_backends.values())
    _backends.clear()
    _host_entries.clear()
    for backend in backends:
        await backend.close()
