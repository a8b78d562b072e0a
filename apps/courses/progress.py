"""Course progress: which steps a student has passed, and the tries a quiz has left."""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from apps.courses.models import Lab, Step, StepAttempts, StepProgress


def record_pass(user, step: Step) -> None:
    StepProgress.objects.get_or_create(user=user, step=step)


def passed_steps(user, lab: Lab) -> set[int]:
    if not user.is_authenticated:
        return set()
    return set(
        StepProgress.objects.filter(user=user, step__lab=lab).values_list("step__number", flat=True)
    )


def attempts_left(user, step: Step) -> int | None:
    """How many failed checks ``user`` may still have on ``step``; None when it has no limit
    or the step is already passed (a pass is kept, whatever a later check says)."""
    if not step.attempts or StepProgress.objects.filter(user=user, step=step).exists():
        return None
    row = StepAttempts.objects.filter(user=user, step=step).first()
    return max(step.attempts - (row.failed if row else 0), 0)


def record_failure(user, step: Step) -> int | None:
    """Count a failed check of a limited step; the tries left after it."""
    if attempts_left(user, step) is None:
        return None
    row, _ = StepAttempts.objects.get_or_create(user=user, step=step)
    StepAttempts.objects.filter(pk=row.pk).update(
        failed=F("failed") + 1, last_failed_at=timezone.now()
    )
    return attempts_left(user, step)


def attempts_by_step(user, lab: Lab) -> dict[int, int]:
    """Step number -> tries left, for the lab's limited steps ``user`` has not passed."""
    if not user.is_authenticated:
        return {}
    passed = passed_steps(user, lab)
    used = dict(
        StepAttempts.objects.filter(user=user, step__lab=lab).values_list("step__number", "failed")
    )
    return {
        step.number: max(step.attempts - used.get(step.number, 0), 0)
        for step in lab.steps.filter(attempts__gt=0)
        if step.number not in passed
    }
