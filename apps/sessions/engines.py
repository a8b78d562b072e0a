"""The backend registry, shaped like Channels' CHANNEL_LAYERS: settings name a dotted
BACKEND path and its OPTIONS per key; each backend is built on first use and kept."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from provisioning.base import Backend

_backends: dict[str, Backend] = {}

#: Which registry key runs which kind of lab when no host says otherwise.
DEFAULT_KEY_FOR_KIND = {"container": "docker", "vm": "libvirt"}


def get_backend(key: str) -> Backend:
    if key not in _backends:
        _backends[key] = _build(key)
    return _backends[key]


def _build(key: str) -> Backend:
    entry = settings.LABSITE_BACKENDS.get(key)
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


async def close_backends() -> None:
    """Release every backend's connections; the next get_backend builds anew (tests)."""
    backends = list(_backends.values())
    _backends.clear()
    for backend in backends:
        await backend.close()
