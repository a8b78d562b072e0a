"""A class's scheduled labs: the instructor says when the class will do a lab, and its
warm pool is raised ahead of that time (``class_demand``, one of pools' demand sources),
so everybody pressing Start at once gets a ready sandbox."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from apps.audit.log import record
from apps.audit.models import Action
from apps.courses.models import Lab, LabStatus
from apps.sessions.models import LabSession
from apps.teaching.models import Classroom, ScheduledLab
from apps.teaching.views import _taught_by, instructor_required

#: The pool is filled from this long before the lab begins…
LEAD = timedelta(minutes=15)
#: …and kept for the latecomers until this long after.
HOLD = timedelta(minutes=30)
#: A class may ask for at most this many sandboxes for one scheduled lab.
MOST_SANDBOXES = 200
HORIZON = timedelta(days=120)


def class_demand(now: datetime) -> dict[int, int]:
    """{lab id: sandboxes wanted ready} for the scheduled labs about to begin or under way:
    the sandboxes asked for, less the students of the class who already started it."""
    wanted: dict[int, int] = defaultdict(int)
    due = ScheduledLab.objects.filter(
        starts_at__lte=now + LEAD, starts_at__gte=now - HOLD
    ).select_related("classroom")
    for row in due:
        asked = row.sandboxes
        if asked is None:
            asked = row.classroom.students.count()
        started = (
            LabSession.objects.filter(
                lab_id=row.lab_id,
                owner__classrooms=row.classroom,
                created_at__gte=row.starts_at - LEAD,
            )
            .values("owner")
            .distinct()
            .count()
        )
        wanted[row.lab_id] += max(0, asked - started)
    return dict(wanted)


def schedulable_labs(classroom: Classroom):
    """Container labs of the class's course that are ready (VM labs have no pools)."""
    if classroom.course_id is None:
        return Lab.objects.none()
    return Lab.objects.filter(
        module__course_id=classroom.course_id, kind="container", status=LabStatus.READY
    ).select_related("module")


class ScheduleForm(forms.ModelForm):
    starts_at = forms.DateTimeField(
        label=gettext_lazy("Starts at"),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    sandboxes = forms.IntegerField(
        label=gettext_lazy("Sandboxes"),
        required=False,
        min_value=1,
        max_value=MOST_SANDBOXES,
        help_text=gettext_lazy("Leave empty for one per student of the class."),
    )

    class Meta:
        model = ScheduledLab
        fields = ["lab", "starts_at", "sandboxes"]

    def __init__(self, *args, classroom: Classroom, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lab"].queryset = schedulable_labs(classroom)
        self.fields["lab"].label_from_instance = lambda lab: f"{lab.module.title} · {lab.title}"

    def clean_starts_at(self):
        when = self.cleaned_data["starts_at"]
        now = timezone.now()
        if when < now - HOLD:
            raise forms.ValidationError(_("This time has passed."))
        if when > now + HORIZON:
            raise forms.ValidationError(_("Schedule at most four months ahead."))
        return when


def upcoming(classroom: Classroom):
    return classroom.scheduled_labs.filter(starts_at__gte=timezone.now() - HOLD).select_related(
        "lab__module"
    )


@require_POST
@instructor_required
def schedule_lab(request, pk: int):
    classroom = _taught_by(request.user, pk)
    form = ScheduleForm(request.POST, classroom=classroom)
    if not form.is_valid():
        problems = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, _("The lab was not scheduled: %(problems)s") % {
            "problems": problems})  # fmt: skip
        return redirect("teaching:class", pk)
    row = form.save(commit=False)
    row.classroom, row.created_by = classroom, request.user
    row.save()
    record(request.user, Action.LAB_SCHEDULED, target=classroom.name, lab=str(row.lab),
           starts_at=row.starts_at.isoformat(), sandboxes=row.sandboxes)  # fmt: skip
    messages.success(
        request,
        _("%(lab)s is scheduled for %(when)s: its sandboxes are started from 15 minutes "
          "before.") % {"lab": row.lab.title, "when": _local(row.starts_at)},
    )  # fmt: skip
    return redirect("teaching:class", pk)


@require_POST
@instructor_required
def unschedule_lab(request, pk: int, schedule_id: int):
    classroom = _taught_by(request.user, pk)
    row = classroom.scheduled_labs.filter(pk=schedule_id).select_related("lab").first()
    if row is None:
        raise Http404
    row.delete()
    record(request.user, Action.SCHEDULE_REMOVED, target=classroom.name, lab=str(row.lab),
           starts_at=row.starts_at.isoformat())  # fmt: skip
    messages.success(request, _("%(lab)s is no longer scheduled.") % {"lab": row.lab.title})
    return redirect("teaching:class", pk)


def _local(when: datetime) -> str:
    return timezone.localtime(when).strftime("%Y-%m-%d %H:%M")
