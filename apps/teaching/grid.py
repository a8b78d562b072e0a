"""A class at a glance: students × labs × steps, who is in which lab now, time spent, last
activity. One function builds it for the page, its live socket and the CSV export, with a
fixed number of queries whatever the size of the class (no query per student or lab)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from apps.courses.models import Lab, LabStatus, StepProgress
from apps.sessions.models import LIVE_STATES, LabSession, State
from apps.teaching.models import Classroom


def class_labs(classroom: Classroom) -> list[Lab]:
    """The labs a class works on: its course's ready labs (every course's if it has none)."""
    labs = Lab.objects.filter(status=LabStatus.READY).select_related("module__course")
    if classroom.course_id:
        labs = labs.filter(module__course_id=classroom.course_id)
    labs = labs.order_by("module__course__slug", "module__number", "order", "slug")
    return list(labs.prefetch_related("steps"))


def class_grid(
    classroom: Classroom, now: datetime | None = None, student_ids: Iterable[int] | None = None
) -> dict:
    """The grid as plain data (JSON-ready). ``student_ids`` limits it to those students of
    the class (the live socket's update of a few rows); the labs are always all there.

    ``students[i]["labs"][str(lab_id)]`` = ``{"passed": [step numbers], "seconds_spent"}``;
    ``students[i]["sessions"]`` = the student's live sessions in the class's labs."""
    now = now or timezone.now()
    labs = class_labs(classroom)
    lab_ids = [lab.pk for lab in labs]
    students_qs = classroom.students.order_by("username")
    if student_ids is not None:
        students_qs = students_qs.filter(pk__in=list(student_ids))
    students = list(students_qs)
    ids = [s.pk for s in students]

    passed, passed_last = _passes(ids, lab_ids)
    spent, session_last = _time_spent(ids, lab_ids, now)
    live = _live_sessions(classroom, ids, lab_ids, now)

    def last_active(student) -> datetime | None:
        times = [student.last_login, session_last.get(student.pk), passed_last.get(student.pk)]
        times = [t for t in times if t]
        return max(times) if times else None

    return {
        "labs": [_lab_json(lab) for lab in labs],
        "students": [
            {
                "id": s.pk,
                "username": s.username,
                "name": s.get_full_name() or s.username,
                "last_active": _iso(last_active(s)),
                "labs": {
                    str(lab_id): {
                        "passed": sorted(passed.get((s.pk, lab_id), [])),
                        "seconds_spent": round(spent.get((s.pk, lab_id), 0.0)),
                    }
                    for lab_id in lab_ids
                },
                "sessions": live.get(s.pk, []),
            }
            for s in students
        ],
        "generated_at": _iso(now),
    }


def _lab_json(lab: Lab) -> dict:
    return {
        "id": lab.pk,
        "slug": lab.slug,
        "title": lab.display_title,
        "url": lab.get_absolute_url(),
        "steps": [{"number": st.number, "title": st.display_title} for st in lab.steps.all()],
    }


def _passes(ids: list[int], lab_ids: list[int]):
    """Steps passed per (student, lab), and each student's latest pass anywhere."""
    passed: dict[tuple[int, int], list[int]] = defaultdict(list)
    last: dict[int, datetime] = {}
    rows = StepProgress.objects.filter(user_id__in=ids).values_list(
        "user_id", "step__lab_id", "step__number", "passed_at"
    )
    for user_id, lab_id, number, at in rows:
        if lab_id in lab_ids:
            passed[(user_id, lab_id)].append(number)
        if user_id not in last or at > last[user_id]:
            last[user_id] = at
    return passed, last


def _time_spent(ids: list[int], lab_ids: list[int], now: datetime):
    """Seconds in each lab, summed over its sessions ((ended or now) − started), and each
    student's latest activity in any session. Totals are summed here rather than in SQL:
    date arithmetic differs between SQLite and PostgreSQL, and one pass over
    (owner, lab, started, ended) tuples stays cheap for a semester of sessions."""
    spent: dict[tuple[int, int], float] = defaultdict(float)
    started = LabSession.objects.filter(
        owner_id__in=ids, lab_id__in=lab_ids, started_at__isnull=False
    ).values_list("owner_id", "lab_id", "started_at", "ended_at")
    for owner_id, lab_id, started_at, ended_at in started:
        spent[(owner_id, lab_id)] += max(0.0, ((ended_at or now) - started_at).total_seconds())
    last = dict(
        LabSession.objects.filter(owner_id__in=ids)
        .values_list("owner_id")
        .annotate(at=Max("last_activity_at"))
    )
    return spent, last


def _live_sessions(classroom: Classroom, ids: list[int], lab_ids: list[int], now: datetime):
    live: dict[int, list[dict]] = defaultdict(list)
    rows = LabSession.objects.filter(
        owner_id__in=ids, lab_id__in=lab_ids, state__in=LIVE_STATES
    ).order_by("created_at")
    for s in rows:
        live[s.owner_id].append(
            {
                "id": str(s.pk),
                "lab": s.lab_id,
                "state": s.state,
                "state_label": s.state_label,
                "seconds_left": s.seconds_left(now) if s.state == State.RUNNING else None,
                "expires_at": _iso(s.expires_at),
                "watch_url": reverse("teaching:watch", args=[classroom.pk, s.pk]),
                "stop_url": reverse("teaching:stop_session", args=[classroom.pk, s.pk]),
                "recordings_url": reverse("recordings:session", args=[s.pk]),
            }
        )
    return live


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
