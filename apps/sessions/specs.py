"""From a session row to the plain SandboxSpec a backend understands."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from uuid import UUID

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


def name_for(sandbox_id: UUID) -> str:
    """Deterministic, so a retried start finds what an earlier try made."""
    return f"{settings.LABSITE_SITE_NAME}-{sandbox_id.hex[:16]}"


def sandbox_name(session: LabSession) -> str:
    return name_for(session.pk)


def labels_for(lab, sandbox_id: UUID, owner: str) -> dict[str, str]:
    """A sandbox's labels. ``owner`` is empty for a warm pool's sandbox, which is nobody's
    until a Start claims it (the database then says whose it is)."""
    found = {
        LABEL_SITE: settings.LABSITE_SITE_NAME,
        LABEL_SESSION: str(sandbox_id),
        LABEL_LAB: f"{lab.module.slug}/{lab.slug}",
    }
    if owner:
        found[LABEL_OWNER] = owner
    return found


def labels(session: LabSession) -> dict[str, str]:
    return labels_for(session.lab, session.pk, session.owner.get_username())


def image_for(lab) -> str:
    if lab.dockerfile:
        digest = hashlib.sha256(lab.dockerfile.encode()).hexdigest()[:12]
        return f"labsite/lab-{lab.slug}:{digest}"
    return lab.environment


def spec_for(lab, *, name: str, labels: dict[str, str]) -> SandboxSpec:
    return SandboxSpec(
        name=name,
        image=image_for(lab),
        labels=labels,
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


def sandbox_spec(session: LabSession) -> SandboxSpec:
    return spec_for(
        session.lab, name=session.sandbox_name or sandbox_name(session), labels=labels(session)
    )


def spec_digest(lab) -> str:
    """What a sandbox of ``lab`` is made from, as a digest: two sandboxes with the same one
    are interchangeable (a warm pool's sandbox made before an edit of the lab is not)."""
    spec = dataclasses.asdict(spec_for(lab, name="", labels={}))
    spec["kind"] = lab.kind
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def sandbox_of(session: LabSession) -> Sandbox:
    return Sandbox(name=session.sandbox_name, engine_id=session.engine_id, labels=labels(session))
