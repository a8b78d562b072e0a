"""Pools of engine hosts that run sandboxes: each host is a Docker Engine or a libvirtd
reached through its own remote API (no agent of ours on it). Placement
(``apps.hosts.placement``) picks among a pool's hosts; the reconciler probes their health."""

from __future__ import annotations

import hashlib

from django.db import models
from django.utils.translation import gettext_lazy as _


class Engine(models.TextChoices):
    DOCKER = "docker", _("Docker Engine")
    LIBVIRT = "libvirt", _("libvirt (KVM/QEMU)")


class Pool(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("pool")
        verbose_name_plural = _("pools")

    def __str__(self) -> str:
        return self.name


class Health(models.TextChoices):
    UNKNOWN = "unknown", _("Not checked yet")
    UP = "up", _("Up")
    DOWN = "down", _("Down")


class Host(models.Model):
    """One engine on one machine.

    ``backend`` names the entry of settings.LABSITE_BACKENDS whose class and options it
    uses; ``endpoint`` and the TLS files, when set, replace that entry's address (so the
    site's own engines are hosts too, and an admin adds others from the site)."""

    pool = models.ForeignKey(
        Pool, on_delete=models.PROTECT, related_name="hosts", verbose_name=_("pool")
    )
    name = models.CharField(_("name"), max_length=100, unique=True)
    engine = models.CharField(_("engine"), max_length=16, choices=Engine.choices)
    backend = models.CharField(_("backend key"), max_length=50)
    endpoint = models.CharField(
        _("endpoint"), max_length=500, blank=True,
        help_text=_(
            "Docker: unix:///var/run/docker.sock, tcp://host:2376 (with TLS files) or "
            "ssh://user@host. libvirt: qemu:///system, qemu+ssh://user@host/system or "
            "qemu+tls://host/system. Empty: the site's configured engine."
        ),
    )  # fmt: skip
    tls_ca = models.CharField(_("TLS CA certificate file"), max_length=300, blank=True)
    tls_cert = models.CharField(_("TLS client certificate file"), max_length=300, blank=True)
    tls_key = models.CharField(_("TLS client key file"), max_length=300, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    draining = models.BooleanField(
        _("draining"), default=False,
        help_text=_("A draining host takes no new sessions and empties as its sessions end."),
    )  # fmt: skip
    max_sessions = models.PositiveIntegerField(_("sessions at most"), default=50)
    #: What the labs' limits may add up to (0: not counted). A lab's CPUs and memory are
    #: limits, not reservations, so a host may well take more than it has.
    max_cpus = models.FloatField(
        _("CPUs for sandboxes"),
        default=0,
        help_text=_("The sum of the labs' CPU limits; 0: not counted."),
    )
    max_memory_mib = models.PositiveIntegerField(
        _("memory for sandboxes (MiB)"), default=0,
        help_text=_("The sum of the labs' memory limits; 0: not counted."),
    )  # fmt: skip
    #: What the host offers that a lab may require: "kvm", "gpu", "runsc"…
    labels = models.JSONField(_("labels"), default=list, blank=True)
    health = models.CharField(
        _("health"), max_length=8, choices=Health.choices, default=Health.UNKNOWN
    )
    last_error = models.TextField(_("last error"), blank=True)
    down_since = models.DateTimeField(_("down since"), null=True, blank=True)
    checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    #: What the host reported at its last probe: engine version, KVM or TCG, capacity.
    facts = models.JSONField(_("facts"), default=dict, blank=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        ordering = ["pool", "name"]
        verbose_name = _("host")
        verbose_name_plural = _("hosts")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_engine_display()})"

    @property
    def backend_key(self) -> str:
        """The registry key of this host's backend (apps.sessions.engines): its id and a
        digest of its address, so a process that knew an earlier host of that id (or this
        host before an edit of its address) never reuses a backend made for another."""
        if not self.endpoint:
            return self.backend
        address = "\n".join([self.endpoint, self.tls_ca, self.tls_cert, self.tls_key])
        return f"host-{self.pk}-{hashlib.sha256(address.encode()).hexdigest()[:10]}"


class HostSample(models.Model):
    """A host's load at one minute, for the admin's charts (kept LOAD_HISTORY_DAYS)."""

    host = models.ForeignKey(
        Host, on_delete=models.CASCADE, related_name="samples", verbose_name=_("host")
    )
    at = models.DateTimeField(_("when"), db_index=True)
    sessions = models.PositiveIntegerField(_("sessions"))
    cpus = models.FloatField(_("CPUs in use"))
    memory_mib = models.PositiveIntegerField(_("memory in use (MiB)"))
    up = models.BooleanField(_("up"))

    class Meta:
        ordering = ["at"]
        verbose_name = _("load sample")
        verbose_name_plural = _("load samples")

    def __str__(self) -> str:
        return f"{self.host_id} at {self.at:%Y-%m-%d %H:%M}: {self.sessions} sessions"
