"""System checks: settings that would only fail when a student presses Start."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.utils.module_loading import import_string


@register()
def check_backends(app_configs, **kwargs):
    problems = []
    for key, entry in settings.LABSITE_BACKENDS.items():
        path = entry.get("BACKEND", "")
        try:
            import_string(path)
        except ImportError as exc:
            problems.append(
                Warning(
                    f"LABSITE_BACKENDS[{key!r}] cannot be imported: {exc}",
                    hint="Install its Python package, or remove the entry.",
                    id="sessions.W001",
                )
            )
    if not Path(settings.CONTENT_DIR).is_dir():
        problems.append(
            Error(
                f"CONTENT_DIR {settings.CONTENT_DIR} does not exist",
                hint="Set LABSITE_CONTENT_DIR to the folder holding the course files.",
                id="sessions.E001",
            )
        )
    return problems
