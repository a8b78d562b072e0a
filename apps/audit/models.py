"""The audit log: who did what to which session, host, lab or class, and when.

An entry keeps what it says as text (the actor's name, the session's id, the host's name,
what was acted on), so it outlives the user, the session and the host it is about."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Action(models.TextChoices):
    SESSION_STARTED = "session_started", _("session started")
    SESSION_STOPPED = "session_stopped", _("session stopped")
    SESSION_RESET = "session_reset", _("session reset")
    SESSION_EXTENDED = "session_extended", _("session extended")
    WATCH_STARTED = "watch_started", _("started watching")
    WATCH_ASKED = "watch_asked", _("asked to type")
    WATCH_ALLOWED = "watch_allowed", _("was allowed to type")
    WATCH_REFUSED = "watch_refused", _("was refused typing")
    WATCH_TAKEN_BACK = "watch_taken_back", _("had typing taken back")
    WATCH_ENDED = "watch_ended", _("stopped watching")
    LAB_CREATED = "lab_created", _("content created")
    LAB_EDITED = "lab_edited", _("content edited")
    LAB_RESTORED = "lab_restored", _("content restored")
    LAB_IMPORTED = "lab_imported", _("lab imported")
    COURSE_IMPORTED = "course_imported", _("course imported")
    HOST_ADDED = "host_added", _("host added")
    HOST_CHANGED = "host_changed", _("host changed")
    HOST_DRAINED = "host_drained", _("host drained")
    HOST_REMOVED = "host_removed", _("host removed")
    ACCOUNTS_IMPORTED = "accounts_imported", _("accounts imported")
    QUOTA_CHANGED = "quota_changed", _("class quotas changed")
    LAB_SCHEDULED = "lab_scheduled", _("class lab scheduled")
    SCHEDULE_REMOVED = "schedule_removed", _("class lab unscheduled")


class AuditEntry(models.Model):
    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="audit_entries", verbose_name=_("user"),
    )  # fmt: skip
    #: The actor's username as it was: kept when the user is deleted ("" for the site).
    actor_name = models.CharField(_("user name"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=32, choices=Action.choices)
    #: No foreign key: an entry outlives the session it is about.
    session_id = models.UUIDField(_("session"), null=True, blank=True)
    host_name = models.CharField(_("host"), max_length=100, blank=True)
    #: What was acted on, as a person reads it: "alice / 你好，容器", a lab's path, a class.
    target = models.CharField(_("acted on"), max_length=300, blank=True)
    detail = models.JSONField(_("details"), default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["actor", "at"]),
            models.Index(fields=["session_id"]),
            models.Index(fields=["host_name"]),
        ]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")

    def __str__(self) -> str:
        who = self.actor_name or "—"
        return f"{self.at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.target}".rstrip()
