"""Who may edit a course, the history of its files, and the runs of the lab validator.

The files under CONTENT_DIR stay the source of truth: a ``Revision`` is a copy of one
unit's text files (the course's own files, a module's, or a whole lab folder) taken at
each save, import, restore, or when the editor finds the disk changed behind its back.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class CourseRoleKind(models.TextChoices):
    OWNER = "owner", _("Owner")
    EDITOR = "editor", _("Editor")


class CourseRole(models.Model):
    """An instructor may edit ``course`` (an owner may also grant editors)."""

    course = models.ForeignKey(
        "courses.Course", on_delete=models.CASCADE, related_name="roles",
        verbose_name=_("course"),
    )  # fmt: skip
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="course_roles",
        verbose_name=_("user"),
    )  # fmt: skip
    role = models.CharField(
        _("role"), max_length=16, choices=CourseRoleKind.choices, default=CourseRoleKind.EDITOR
    )
    granted_at = models.DateTimeField(_("granted at"), auto_now_add=True)

    class Meta:
        ordering = ["course", "role", "user"]
        constraints = [
            models.UniqueConstraint(fields=["course", "user"], name="one_role_per_course_user")
        ]
        verbose_name = _("course role")
        verbose_name_plural = _("course roles")

    def __str__(self) -> str:
        return f"{self.user} {self.role} {self.course}"


class RevisionSource(models.TextChoices):
    EDITOR = "editor", _("saved in the editor")
    DISK = "disk", _("changed on disk")
    IMPORT = "import", _("imported")
    RESTORE = "restore", _("restored")


class Revision(models.Model):
    """One unit's text files as they were after a change."""

    course = models.ForeignKey(
        "courses.Course", on_delete=models.CASCADE, related_name="revisions",
        verbose_name=_("course"),
    )  # fmt: skip
    #: The unit's folder relative to the course folder: "" (the course's own files),
    #: "01-basics" (a module's) or "01-basics/labs/hello" (a lab's, all of it).
    path = models.CharField(_("path"), max_length=300, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="revisions", verbose_name=_("author"),
    )  # fmt: skip
    source = models.CharField(_("source"), max_length=16, choices=RevisionSource.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    message = models.CharField(_("message"), max_length=300, blank=True)
    #: {path relative to the unit's folder: text}
    files = models.JSONField(_("files"), default=dict)
    digest = models.CharField(_("digest"), max_length=64)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["course", "path", "-created_at"])]
        verbose_name = _("revision")
        verbose_name_plural = _("revisions")

    def __str__(self) -> str:
        return f"{self.course.slug}/{self.path} #{self.pk}"

    @property
    def author_label(self) -> str:
        if self.source == RevisionSource.DISK:
            return str(_("on disk"))
        return self.author.get_username() if self.author else "—"


class ValidationStatus(models.TextChoices):
    RUNNING = "running", _("running")
    PASSED = "passed", _("passed")
    FAILED = "failed", _("broken steps found")
    ERROR = "error", _("could not run")


class Validation(models.Model):
    """One press of *Validate*: the page polls this row while a background task of the
    web process that took the request runs the validator and writes its progress here."""

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    lab = models.ForeignKey(
        "courses.Lab", on_delete=models.CASCADE, related_name="validations",
        verbose_name=_("lab"),
    )  # fmt: skip
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, verbose_name=_("user")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=ValidationStatus.choices,
        default=ValidationStatus.RUNNING,
    )  # fmt: skip
    #: The validator's last progress event: starting, step, done.
    phase = models.CharField(_("phase"), max_length=16, blank=True)
    #: The outcomes of the steps done so far, as the validator reports them.
    steps = models.JSONField(_("steps"), default=list)
    #: LabReport.as_dict() once done.
    report = models.JSONField(_("report"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    #: Renewed while the task runs: a row not renewed for a while lost its process.
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("validation")
        verbose_name_plural = _("validations")

    def __str__(self) -> str:
        return f"{self.lab} {self.status}"
