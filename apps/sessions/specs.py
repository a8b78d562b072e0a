"""From a session row to the plain SandboxSpec a backend understands."""

from __future__ import annotations

import hashlib

from django.conf import settings

from apps.sessions.models import LabSession
from provisioning.base import (
    LABEL_LAB,
    LABEL_OWNER,
    LABEL_SESSION,
    LABEL_SITE,
    Resources,
    Sandbox,
    SandboxSpec,
)


def sandbox_name(session: LabSession) -> str:
    """Deterministic, so a retried start finds what an earlier try made."""
    return f"{settings.LABSITE_SITE_NAME}-{session.pk.hex[:16]}"


def labels(session: LabSession) -> dict[str, str]:
    return {
        LABEL_SITE: settings.LABSITE_SITE_NAME,
        LABEL_SESSION: str(session.pk),
        LABEL_OWNER: session.owner.get_username(),
        LABEL_LAB: f"{session.lab.module.slug}/{session.lab.slug}",
    }


def image_for(session: LabSession) -> str:
    lab = session.lab
    if lab.dockerfile:
        digest = hashlib.sha256(lab.dockerfile.encode()).hexdigest()[:12]
        return f"labsite/lab-{lab.slug}:{digest}"
    return lab.environment


def sandbox_spec(session: LabSession) -> SandboxSpec:
    lab = session.lab
    return SandboxSpec(
        name=session.sandbox_name or sandbox_name(session),
        image=image_for(session),
        labels=labels(session),
        resources=Resources(
            cpus=lab.cpus, memory_mib=lab.memory_mib, pids=lab.pids, disk_mib=lab.disk_mib
        ),
        capabilities=tuple(lab.capabilities),
        network=lab.network,
        setup_script=lab.setup_script,
        runtime=lab.runtime or None,
        hostname="lab",
        dockerfile=lab.dockerfile,
    )


def sandbox_of(session: LabSession) -> Sandbox:
    return Sandbox(name=session.sandbox_name, engine_id=session.engine_id, labels=labels(session))
