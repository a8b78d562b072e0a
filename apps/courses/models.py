"""Courses, modules, labs and steps: a copy of the files under content/, kept by load_content.
The files are the source of truth; only StepProgress is written by students."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Course(models.Model):
    slug = models.SlugField(_("short name"), unique=True)
    title = models.CharField(_("title"), max_length=200)
    title_en = models.CharField(_("title in English"), max_length=200, blank=True)
    summary = models.TextField(_("summary"), blank=True)
    summary_en = models.TextField(_("summary in English"), blank=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = _("course")
        verbose_name_plural = _("courses")

    def __str__(self) -> str:
        return self.title

    @property
    def display_title(self) -> str:
        return _localized(self.title, self.title_en)

    @property
    def display_summary(self) -> str:
        return _localized(self.summary, self.summary_en)

    def get_absolute_url(self) -> str:
        return reverse("courses:course", args=[self.slug])


class Module(models.Model):
    course = models.ForeignKey(
        Course, on_delete=models.CASCADE, related_name="modules", verbose_name=_("course")
    )
    slug = models.SlugField(_("short name"))
    number = models.PositiveIntegerField(_("number"))
    title = models.CharField(_("title"), max_length=200)
    title_en = models.CharField(_("title in English"), max_length=200, blank=True)
    summary = models.TextField(_("summary"), blank=True)
    summary_en = models.TextField(_("summary in English"), blank=True)
    body_html = models.TextField(_("lesson (HTML)"), blank=True)
    #: [(anchor, heading)] of the lesson's second-level headings.
    toc = models.JSONField(_("table of contents"), default=list, blank=True)
    source_dir = models.CharField(_("source folder"), max_length=500)

    class Meta:
        ordering = ["course", "number"]
        constraints = [
            models.UniqueConstraint(fields=["course", "slug"], name="unique_module_slug")
        ]
        verbose_name = _("module")
        verbose_name_plural = _("modules")

    def __str__(self) -> str:
        return f"{self.number}. {self.title}"

    @property
    def display_title(self) -> str:
        return _localized(self.title, self.title_en)

    @property
    def display_summary(self) -> str:
        return _localized(self.summary, self.summary_en)

    def get_absolute_url(self) -> str:
        return reverse("courses:module", args=[self.course.slug, self.slug])


class LabKind(models.TextChoices):
    CONTAINER = "container", _("Container")
    VM = "vm", _("Virtual machine")


class LabStatus(models.TextChoices):
    READY = "ready", _("Ready")
    PLANNED = "planned", _("Planned")


class Lab(models.Model):
    module = models.ForeignKey(
        Module, on_delete=models.CASCADE, related_name="labs", verbose_name=_("module")
    )
    slug = models.SlugField(_("short name"))
    order = models.PositiveIntegerField(_("order"), default=0)
    title = models.CharField(_("title"), max_length=200)
    title_en = models.CharField(_("title in English"), max_length=200, blank=True)
    summary = models.TextField(_("summary"), blank=True)
    summary_en = models.TextField(_("summary in English"), blank=True)
    plan = models.TextField(_("plan"), blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=LabKind.choices)
    status = models.CharField(_("status"), max_length=16, choices=LabStatus.choices)
    #: Container image or VM template name.
    environment = models.CharField(_("image or VM template"), max_length=200)
    #: Has a Dockerfile of its own, built FROM a local image.
    dockerfile = models.TextField(_("Dockerfile"), blank=True)
    cpus = models.FloatField(_("CPUs"), default=0.5)
    memory_mib = models.PositiveIntegerField(_("memory (MiB)"), default=256)
    pids = models.PositiveIntegerField(_("processes at most"), default=128)
    #: What the sandbox may write to its own disk, in MiB.
    disk_mib = models.PositiveIntegerField(_("disk (MiB)"), default=1024)
    capabilities = models.JSONField(_("added capabilities"), default=list, blank=True)
    network = models.CharField(_("network"), max_length=16, default="none")
    #: Optional stronger OCI runtime (e.g. "runsc" for gVisor), used where the host has it.
    runtime = models.CharField(_("container runtime"), max_length=32, blank=True)
    time_limit_minutes = models.PositiveIntegerField(_("time limit (minutes)"), default=45)
    setup_script = models.TextField(_("setup script"), blank=True)
    source_dir = models.CharField(_("source folder"), max_length=500)
    #: The pool of hosts it runs on (a hosts.Pool's name) and the labels a host must have.
    pool = models.CharField(_("pool"), max_length=100, default="default")
    host_labels = models.JSONField(_("required host labels"), default=list, blank=True)
    #: Sandboxes kept started so that Start is instant (lab.yaml's ``warm_pool``; an admin's
    #: pools.PoolSize replaces it, a class's scheduled lab raises it).
    warm_pool = models.PositiveSmallIntegerField(_("warm pool size"), default=0)

    class Meta:
        ordering = ["module", "order", "slug"]
        constraints = [models.UniqueConstraint(fields=["module", "slug"], name="unique_lab_slug")]
        verbose_name = _("lab")
        verbose_name_plural = _("labs")

    def __str__(self) -> str:
        return self.title

    @property
    def display_title(self) -> str:
        return _localized(self.title, self.title_en)

    @property
    def display_summary(self) -> str:
        return _localized(self.summary, self.summary_en)

    @property
    def is_ready(self) -> bool:
        return self.status == LabStatus.READY

    def get_absolute_url(self) -> str:
        # The lab page shows the student's session, so the sessions app serves it.
        return reverse("sessions:lab", args=[self.module.course.slug, self.module.slug, self.slug])


class Step(models.Model):
    lab = models.ForeignKey(
        Lab, on_delete=models.CASCADE, related_name="steps", verbose_name=_("lab")
    )
    number = models.PositiveIntegerField(_("number"))
    slug = models.SlugField(_("short name"))
    title = models.CharField(_("title"), max_length=200)
    title_en = models.CharField(_("title in English"), max_length=200, blank=True)
    body_html = models.TextField(_("instructions (HTML)"), blank=True)
    check_script = models.TextField(_("check script"), blank=True)
    solve_script = models.TextField(_("solution script"), blank=True)
    #: Failed checks a student may have here (0: no limit); set by a quiz's step file.
    attempts = models.PositiveSmallIntegerField(_("failed checks allowed"), default=0)

    class Meta:
        ordering = ["lab", "number"]
        constraints = [models.UniqueConstraint(fields=["lab", "slug"], name="unique_step_slug")]
        verbose_name = _("step")
        verbose_name_plural = _("steps")

    def __str__(self) -> str:
        return f"{self.number}. {self.title}"

    @property
    def display_title(self) -> str:
        return _localized(self.title, self.title_en)


class StepProgress(models.Model):
    """A student passed a step's check. Survives reloads of the content (keyed by step slug)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="step_progress",
        verbose_name=_("student"),
    )  # fmt: skip
    step = models.ForeignKey(
        Step, on_delete=models.CASCADE, related_name="progress", verbose_name=_("step")
    )
    passed_at = models.DateTimeField(_("passed at"), auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "step"], name="one_pass_per_step")]
        verbose_name = _("step passed")
        verbose_name_plural = _("steps passed")

    def __str__(self) -> str:
        return f"{self.user} passed {self.step}"


class StepAttempts(models.Model):
    """A student's failed checks of a step that limits them (a quiz). Kept across sessions,
    so starting the lab again does not buy new tries; an instructor may delete the row."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="step_attempts",
        verbose_name=_("student"),
    )  # fmt: skip
    step = models.ForeignKey(
        Step, on_delete=models.CASCADE, related_name="attempts_used", verbose_name=_("step")
    )
    failed = models.PositiveSmallIntegerField(_("failed checks"), default=0)
    last_failed_at = models.DateTimeField(_("last failed at"), null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "step"], name="one_count_per_step")]
        verbose_name = _("failed attempts")
        verbose_name_plural = _("failed attempts")

    def __str__(self) -> str:
        return f"{self.user}: {self.failed} failed on {self.step}"


def _localized(zh: str, en: str) -> str:
    """The English text on English pages, where there is one; the lessons' Chinese otherwise."""
    lang = get_language() or "zh-hans"
    return en if lang.startswith("en") and en else zh
