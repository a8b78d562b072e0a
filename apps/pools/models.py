"""A warm sandbox: a lab's container started before anyone asked for it.

Its id is the id of the session that will claim it, and its sandbox carries that id in
its session label from the start, so a claim changes no label and no name on the engine:
the claiming transaction deletes this row and inserts a RUNNING ``LabSession`` with the
same id, and from then on the reconciler sees the sandbox as that session's. The owner
is a fact of the database (``LabSession.owner``), never of the engine: a pool sandbox is
labelled with no owner at all."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _


class Member(models.TextChoices):
    STARTING = "starting", _("Starting")
    READY = "ready", _("Ready")
    STOPPING = "stopping", _("Stopping")


class WarmSandbox(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    lab = models.ForeignKey(
        "courses.Lab", on_delete=models.CASCADE, related_name="warm_sandboxes",
        verbose_name=_("lab"),
    )  # fmt: skip
    host = models.ForeignKey(
        "hosts.Host", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="warm_sandboxes", verbose_name=_("host"),
    )  # fmt: skip
    backend = models.CharField(_("backend key"), max_length=50)
    state = models.CharField(
        _("state"), max_length=16, choices=Member.choices, default=Member.STARTING
    )
    #: What the sandbox was made from (``specs.spec_digest``): a lab edited since makes
    #: it stale, and a stale one is removed, never handed out.
    spec_digest = models.CharField(_("made from"), max_length=64)
    sandbox_name = models.CharField(_("sandbox name"), max_length=100)
    engine_id = models.CharField(_("engine id"), max_length=100, blank=True)
    #: The worker starting or stopping it (as for sessions: renewed while it works).
    lease_owner = models.CharField(_("held by worker"), max_length=80, blank=True)
    lease_expires_at = models.DateTimeField(_("held until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    ready_at = models.DateTimeField(_("ready since"), null=True, blank=True)

    class Meta:
        ordering = ["lab", "created_at"]
        verbose_name = _("warm sandbox")
        verbose_name_plural = _("warm sandboxes")
        indexes = [models.Index(fields=["lab", "state"])]

    def __str__(self) -> str:
        return f"{self.lab} · {self.get_state_display()} · {self.sandbox_name}"


class PoolSize(models.Model):
    """An administrator's size for a lab's pool, in place of the lab file's ``warm_pool``."""

    lab = models.OneToOneField(
        "courses.Lab", on_delete=models.CASCADE, related_name="pool_size", verbose_name=_("lab")
    )
    size = models.PositiveSmallIntegerField(
        _("ready sandboxes"),
        help_text=_("Replaces the lab file's warm_pool; 0 turns the pool off."),
    )
    note = models.CharField(_("why"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["lab"]
        verbose_name = _("pool size")
        verbose_name_plural = _("pool sizes")

    def __str__(self) -> str:
        return f"{self.lab}: {self.size}"
