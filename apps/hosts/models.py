"""Pools of hosts that run sandboxes. Today every pool has local engines; placement across
several hosts, health and quotas build on these rows."""

from __future__ import annotations

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


class Host(models.Model):
    """One engine on one machine. ``backend`` names an entry of settings.LABSITE_BACKENDS."""

    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="hosts")
    name = models.CharField(_("name"), max_length=100, unique=True)
    engine = models.CharField(_("engine"), max_length=16, choices=Engine.choices)
    backend = models.CharField(_("backend key"), max_length=50)
    enabled = models.BooleanField(_("enabled"), default=True)
    #: What the host reported at its last probe: engine version, KVM or TCG, capacity.
    facts = models.JSONField(_("facts"), default=dict, blank=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        ordering = ["pool", "name"]
        verbose_name = _("host")
        verbose_name_plural = _("hosts")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_engine_display()})"
