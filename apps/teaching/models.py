"""Classes and enrollment: instructors teach a class, students join it with its code."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Letters that cannot be confused with each other when read aloud or off a projector.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_enrollment_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


class Classroom(models.Model):
    """A class: instructors teach it, students join it with its enrollment code."""

    name = models.CharField(_("name"), max_length=200)
    course = models.ForeignKey(
        "courses.Course", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="classrooms", verbose_name=_("course"),
    )  # fmt: skip
    instructors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="teaching", verbose_name=_("instructors")
    )
    students = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Enrollment", related_name="classrooms",
        verbose_name=_("students"),
    )  # fmt: skip
    enrollment_code = models.CharField(
        _("enrollment code"), max_length=16, unique=True, default=new_enrollment_code
    )
    code_expires_at = models.DateTimeField(_("code expires at"), null=True, blank=True)
    #: Quotas of the class (0: no limit); the site-wide per-student limit holds as well.
    max_running = models.PositiveIntegerField(
        _("running sessions at most (whole class)"), default=0,
        help_text=_("0: no limit."),
    )  # fmt: skip
    minutes_per_day = models.PositiveIntegerField(
        _("sandbox minutes per student per day"), default=0,
        help_text=_("0: no limit. Counted from midnight, in the site's time zone."),
    )  # fmt: skip
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("class")
        verbose_name_plural = _("classes")

    def __str__(self) -> str:
        return self.name

    def code_is_valid(self, now=None) -> bool:
        return self.code_expires_at is None or (now or timezone.now()) < self.code_expires_at

    def renew_code(self, valid_for: timedelta | None = timedelta(days=14)) -> None:
        self.enrollment_code = new_enrollment_code()
        self.code_expires_at = timezone.now() + valid_for if valid_for else None
        self.save(update_fields=["enrollment_code", "code_expires_at"])


class ScheduledLab(models.Model):
    """A lab the class will do at a set time: its pool is filled ahead of it, so that when
    everybody presses Start at once, everybody gets a ready sandbox (apps.pools)."""

    classroom = models.ForeignKey(
        Classroom, on_delete=models.CASCADE, related_name="scheduled_labs",
        verbose_name=_("class"),
    )  # fmt: skip
    lab = models.ForeignKey(
        "courses.Lab", on_delete=models.CASCADE, related_name="scheduled", verbose_name=_("lab")
    )
    starts_at = models.DateTimeField(_("starts at"))
    #: Ready sandboxes wanted (None: one per student of the class).
    sandboxes = models.PositiveSmallIntegerField(
        _("sandboxes"), null=True, blank=True,
        help_text=_("Leave empty for one per student of the class."),
    )  # fmt: skip
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("scheduled by"),
    )  # fmt: skip
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["starts_at"]
        verbose_name = _("scheduled lab")
        verbose_name_plural = _("scheduled labs")

    def __str__(self) -> str:
        return f"{self.classroom} · {self.lab} · {self.starts_at:%Y-%m-%d %H:%M}"


class Enrollment(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, verbose_name=_("class"))
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, verbose_name=_("student")
    )
    joined_at = models.DateTimeField(_("joined at"), auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["classroom", "student"], name="one_enrollment")
        ]
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")

    def __str__(self) -> str:
        return f"{self.student} in {self.classroom}"


class Watch(models.Model):
    """An instructor watching one terminal tab of a student's session, read-only unless the
    student lets them type. The rows and their events are the record of who watched whom."""

    session = models.ForeignKey(
        "labsessions.LabSession", on_delete=models.CASCADE, related_name="watches",
        verbose_name=_("session"),
    )  # fmt: skip
    watcher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watches",
        verbose_name=_("watcher"),
    )  # fmt: skip
    tab = models.PositiveSmallIntegerField(_("tab"), default=1)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    #: Renewed by the watcher's socket; a watch whose process died stops counting after
    #: WATCH_STALE, so the student is never told about a watcher who is gone.
    last_seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    asking_since = models.DateTimeField(_("asking to type since"), null=True, blank=True)
    may_type_since = models.DateTimeField(_("may type since"), null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["session", "ended_at"])]
        verbose_name = _("watch")
        verbose_name_plural = _("watches")

    def __str__(self) -> str:
        return f"{self.watcher} watching {self.session_id}"


class WatchEvent(models.Model):
    class Kind(models.TextChoices):
        STARTED = "started", _("started watching")
        ASKED = "asked", _("asked to type")
        ALLOWED = "allowed", _("was allowed to type")
        REFUSED = "refused", _("was refused")
        REVOKED = "revoked", _("had typing taken back")
        ENDED = "ended", _("stopped watching")

    watch = models.ForeignKey(
        Watch, on_delete=models.CASCADE, related_name="events", verbose_name=_("watch")
    )
    kind = models.CharField(_("what"), max_length=16, choices=Kind.choices)
    at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("watch event")
        verbose_name_plural = _("watch events")

    def __str__(self) -> str:
        return f"{self.watch}: {self.kind}"
