"""A class at a glance: students × labs × steps, who is in which lab now, time spent, last
activity. One function builds it for the page, its live socket and the CSV export, with a
fixed number of queries whatever the size of the class."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from apps.courses.models import Lab, LabStatus, StepProgress
from apps.sessions.models import LIVE_STATES, LabSession
from apps.teaching.models import Classroom


def class_labs(classroom: Classroom) -> list[Lab]:
    labs = Lab.objects.filter(status=LabStatus.READY).select_related("module__course")
    if classroom.course_id:
        labs = labs.filter(module__course_id=classroom.course_id)
    labs = labs.order_by("module__course__slug", "module__number", "order", "slug")
    return list(labs.prefetch_related("steps"))


def class_grid(classroom: Classroom, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    labs = class_labs(classroom)
    lab_ids = [lab.pk for lab in labs]
    students = list(classroom.students.order_by("username"))
    student_ids = [s.pk for s in students]

    passed: dict[tuple[int, int], list[int]] = defaultdict(list)
    for user_id, lab_id, number in StepProgress.objects.filter(
        user_id__in=student_ids, step__lab_id__in=lab_ids
    ).values_list("user_id", "step__lab_id", "step__number"):
        passed[(user_id, lab_id)].append(number)

    spent: dict[tuple[int, int], float] = defaultdict(float)
    live: dict[int, list[dict]] = defaultdict(list)
    sessions = LabSession.objects.filter(owner_id__in=student_ids, lab_id__in=lab_ids)
    for s in sessions.filter(started_at__isnull=False).only(
        "owner_id", "lab_id", "started_at", "ended_at"
    ):
        spent[(s.owner_id, s.lab_id)] += ((s.ended_at or now) - s.started_at).total_seconds()
    for s in sessions.filter(state__in=LIVE_STATES).select_related("lab"):
        live[s.owner_id].append(
            {
                "id": str(s.pk),
                "lab": s.lab_id,
                "state": s.state,
                "state_label": s.get_state_display(),
                "seconds_left": s.seconds_left(now),
                "watch_url": reverse("teaching:watch", args=[classroom.pk, s.pk]),
                "stop_url": reverse("teaching:stop_session", args=[classroom.pk, s.pk]),
                "recordings_url": reverse("recordings:session", args=[s.pk]),
            }
        )
    last_active = dict(
        LabSession.objects.filter(owner_id__in=student_ids)
        .values_list("owner_id")
        .annotate(at=Max("last_activity_at"))
    )

    def latest(student) -> datetime | None:
        times = [t for t in (last_active.get(student.pk), student.last_login) if t]
        return max(times) if times else None

    return {
        "labs": [
            {
                "id": lab.pk,
                "title": lab.display_title,
                "url": lab.get_absolute_url(),
                "steps": [
                    {"number": st.number, "title": st.display_title} for st in lab.steps.all()
                ],
            }
            for lab in labs
        ],
        "students": [
            {
                "id": s.pk,
                "username": s.username,
                "name": s.get_full_name() or s.username,
                "last_active": _iso(latest(s)),
                "labs": {
                    str(lab.pk): {
                        "passed": sorted(passed.get((s.pk, lab.pk), [])),
                        "seconds_spent": round(spent.get((s.pk, lab.pk), 0.0)),
                    }
                    for lab in labs
                },
                "sessions": live.get(s.pk, []),
            }
            for s in students
        ],
        "generated_at": _iso(now),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
