"""Course progress: which steps a student has passed."""

from __future__ import annotations

from apps.courses.models import Lab, Step, StepProgress


def record_pass(user, step: Step) -> None:
    StepProgress.objects.get_or_create(user=user, step=step)


def passed_steps(user, lab: Lab) -> set[int]:
    if not user.is_authenticated:
        return set()
    return set(
        StepProgress.objects.filter(user=user, step__lab=lab).values_list("step__number", flat=True)
    )
