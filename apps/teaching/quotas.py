"""A class's quotas, checked when one of its students presses Start (registered into
``apps.sessions.services.START_CHECKS``): how many sessions the whole class may run at
once, and how many sandbox minutes each student may use per day. Instructors and admins
are not held to them. Minutes are counted from midnight in the site's time zone, and a
session already running is not cut short: the quota decides whether the next one starts."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.utils import formats, timezone
from django.utils.translation import gettext as _

from apps.accounts.roles import is_instructor
from apps.sessions.errors import LabError
from apps.sessions.models import LIVE_STATES, LabSession
from apps.teaching.models import Classroom


def check_class_quotas(user, lab) -> None:
    if is_instructor(user):
        return
    rooms = list(Classroom.objects.filter(enrollment__student=user))
    for room in rooms:
        if room.max_running and running_in(room) >= room.max_running:
            raise LabError(
                "class_quota",
                _(
                    "Your class “%(name)s” may run %(n)d labs at once, and that many are "
                    "running now. Try again when a classmate stops theirs."
                )
                % {"name": room.name, "n": room.max_running},
                429,
            )
    limited = [r for r in rooms if r.minutes_per_day]
    if not limited:
        return
    room = min(limited, key=lambda r: r.minutes_per_day)
    if minutes_used_today(user) >= room.minutes_per_day:
        raise LabError(
            "daily_quota",
            _(
                "You have used your %(n)d minutes of lab time for today (the limit of your "
                "class “%(name)s”). It resets at %(reset)s."
            )
            % {
                "n": room.minutes_per_day,
                "name": room.name,
                "reset": formats.date_format(next_midnight(), "DATETIME_FORMAT"),
            },
            429,
        )


def running_in(room: Classroom) -> int:
    return LabSession.objects.filter(
        owner__enrollment__classroom=room, state__in=LIVE_STATES
    ).count()


def minutes_used_today(user, now: datetime | None = None) -> float:
    """Minutes of sandbox time ``user``'s sessions used since midnight (running ones up to
    now)."""
    now = now or timezone.now()
    midnight = today_midnight(now)
    used = timedelta()
    sessions = LabSession.objects.filter(owner=user, started_at__isnull=False).exclude(
        ended_at__lt=midnight
    )
    for started, ended in sessions.values_list("started_at", "ended_at"):
        used += max((ended or now) - max(started, midnight), timedelta())
    return used.total_seconds() / 60


def today_midnight(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return timezone.make_aware(datetime.combine(local.date(), time.min), local.tzinfo)


def next_midnight(now: datetime | None = None) -> datetime:
    return today_midnight(now or timezone.now()) + timedelta(days=1)
