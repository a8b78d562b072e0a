"""A lab session: one student's sandbox for one lab. The row is the wanted state; the
engine holds the actual state; the reconciler makes them agree."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class State(models.TextChoices):
    REQUESTED = "requested", _("Queued")
    STARTING = "starting", _("Starting")
    RUNNING = "running", _("Running")
    STOPPING = "stopping", _("Stopping")
    STOPPED = "stopped", _("Stopped")
    EXPIRED = "expired", _("Expired")
    FAILED = "failed", _("Failed")


#: States in which a sandbox exists or is on its way out.
ACTIVE_STATES = (State.REQUESTED, State.STARTING, State.RUNNING, State.STOPPING)
#: States in which the student has (or will have) a sandbox: one such session per lab, so
#: a Reset can start the new sandbox while the old one is still being removed.
LIVE_STATES = (State.REQUESTED, State.STARTING, State.RUNNING)
ENDED_STATES = (State.STOPPED, State.EXPIRED, State.FAILED)


class EndReason(models.TextChoices):
    USER = "user", _("stopped by you")
    RESET = "reset", _("replaced by a fresh sandbox")
    TIME_LIMIT = "time_limit", _("the time limit was reached")
    IDLE = "idle", _("it was idle for too long")
    LOST = "lost", _("its sandbox disappeared")
    EXITED = "exited", _("its sandbox stopped by itself")
    DISK = "disk", _("it used more disk space than the lab allows")
    ERROR = "error", _("it could not be started")
    ADMIN = "admin", _("stopped by an administrator")
    INSTRUCTOR = "instructor", _("stopped by your instructor")
    HOST_DOWN = "host_down", _("the machine running it stopped answering")


def lease_free(now) -> Q:
    """Rows nobody holds: no lease owner, or a lease that has lapsed by ``now``."""
    return Q(lease_owner="") | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)


class LabSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="lab_sessions",
        verbose_name=_("student"),
    )
    lab = models.ForeignKey(
        "courses.Lab", on_delete=models.CASCADE, related_name="sessions", verbose_name=_("lab")
    )
    host = models.ForeignKey(
        "hosts.Host",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sessions",
        verbose_name=_("host"),
    )
    #: Key of settings.LABSITE_BACKENDS that runs the sandbox.
    backend = models.CharField(_("backend key"), max_length=50)
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.REQUESTED
    )
    end_reason = models.CharField(
        _("why it ended"), max_length=16, choices=EndReason.choices, blank=True
    )
    #: Shown to the student when something went wrong, in words they understand.
    failure_message = models.TextField(_("message to the student"), blank=True)
    progress_percent = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    progress_message = models.CharField(_("progress message"), max_length=200, blank=True)
    sandbox_name = models.CharField(_("sandbox name"), max_length=100, blank=True)
    engine_id = models.CharField(_("engine id"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    last_activity_at = models.DateTimeField(_("last active at"), default=timezone.now)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    extensions = models.PositiveSmallIntegerField(_("extensions"), default=0)
    #: The worker that is starting or stopping the sandbox, and until when its claim holds.
    #: The worker renews the lease while it works; another takes over only once it lapses.
    lease_owner = models.CharField(_("held by worker"), max_length=80, blank=True)
    lease_expires_at = models.DateTimeField(_("held until"), null=True, blank=True)
    #: A check runs until this time (one at a time per session, in any process), and the
    #: number of checks started in the current minute (the rate limit).
    check_busy_until = models.DateTimeField(_("check running until"), null=True, blank=True)
    check_window_started_at = models.DateTimeField(_("check window began"), null=True, blank=True)
    checks_in_window = models.PositiveSmallIntegerField(_("checks in window"), default=0)
    #: The lab's steps as they were when the session began ([{number, slug, title,
    #: body_html, check_script}]): an edit of the lab never changes a running session.
    steps = models.JSONField(_("steps as begun"), default=list, blank=True)
    #: Bumped on every change the page should hear about.
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("lab session")
        verbose_name_plural = _("lab sessions")
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "lab"],
                condition=Q(state__in=LIVE_STATES),
                name="one_live_session_per_lab",
            )
        ]
        indexes = [models.Index(fields=["state"])]
        verbose_name = _("lab session")
        verbose_name_plural = _("lab sessions")

    def __str__(self) -> str:
        return f"{self.owner} · {self.lab} · {self.state}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def state_label(self) -> str:
        """The state as people read it. A start already placed on a host, only not claimed
        by the runner yet (a fraction of a second), reads "Starting": "Queued" would flash
        on every start although nothing waits."""
        if self.state == State.REQUESTED and self.backend:
            return str(State.STARTING.label)
        return str(State(self.state).label)

    def seconds_left(self, now=None) -> int | None:
        if self.expires_at is None:
            return None
        return max(0, int((self.expires_at - (now or timezone.now())).total_seconds()))

    def can_extend(self) -> bool:
        return self.state == State.RUNNING and self.extensions < settings.LABSITE_MAX_EXTENSIONS

    def time_limit(self) -> timedelta:
        return timedelta(minutes=self.lab.time_limit_minutes)


class CheckRun(models.Model):
    """One run of a step's check (metrics and the audit of what a student tried)."""

    session = models.ForeignKey(
        LabSession, on_delete=models.CASCADE, related_name="check_runs",
        verbose_name=_("session"),
    )  # fmt: skip
    step = models.PositiveSmallIntegerField(_("step"))
    passed = models.BooleanField(_("passed"))
    timed_out = models.BooleanField(_("timed out"), default=False)
    seconds = models.FloatField(_("seconds"))
    at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("check run")
        verbose_name_plural = _("check runs")

    def __str__(self) -> str:
        return f"{self.session_id} step {self.step}: {'passed' if self.passed else 'failed'}"
