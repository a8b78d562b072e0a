"""The live class page and what it offers: stop a session, the grid as CSV, many accounts."""

from __future__ import annotations

import time
from datetime import timedelta

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from apps.audit.log import record
from apps.audit.models import Action
from apps.sessions import events, services
from apps.sessions.models import LIVE_STATES, EndReason, LabSession
from apps.teaching import csv_io, schedule
from apps.teaching.grid import class_grid
from apps.teaching.models import Classroom
from apps.teaching.views import _taught_by, instructor_required

#: The Django session key holding the passwords of the last import, until downloaded once
#: or PASSWORDS_KEPT_SECONDS have passed: nothing else keeps them (only hashes are stored).
PASSWORDS_KEY = "teaching-import-passwords"
PASSWORDS_KEPT_SECONDS = 30 * 60


@instructor_required
def class_detail(request, pk: int):
    classroom = _taught_by(request.user, pk)
    return render(
        request,
        "teaching/class_detail.html",
        {
            "classroom": classroom,
            "grid": class_grid(classroom),
            "live_url": f"/ws/classes/{classroom.pk}/live/",
            "labels": _grid_labels(),
            "quotas_form": QuotasForm(instance=classroom),
            "schedule_form": schedule.ScheduleForm(
                classroom=classroom, initial={"starts_at": _next_hour()}
            ),
            "scheduled": schedule.upcoming(classroom),
        },
    )


def _next_hour():
    now = timezone.localtime()
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _grid_labels() -> dict[str, str]:
    """The words the page's script shows, translated here (the script has no catalog)."""
    return {
        "student": _("Student"),
        "now": _("Now"),
        "last_active": _("Last active"),
        "watch": _("Watch"),
        "stop": _("Stop"),
        "recordings": _("Recordings"),
        "left": _("%(time)s left"),
        "never": _("never"),
        "idle": _("not in a lab"),
        "minutes": _("%(n)s min"),
        "steps": _("%(done)s of %(total)s steps"),
        "confirm_stop": _("Stop this student's lab now? Their work in the sandbox is lost."),
        "live": _("Live: this page updates by itself."),
        "offline": _("Live updates paused; reconnecting…"),
        "none": _("No student has joined yet."),
        "no_labs": _("This class's course has no labs yet."),
    }


@require_POST
@instructor_required
def stop_session(request, pk: int, session_id):
    classroom = _taught_by(request.user, pk)
    # Only sessions of this class's students: an instructor of another class gets a 404
    # whatever the session id, so ids of other students' sessions tell nothing.
    session = (
        LabSession.objects.select_related("owner")
        .filter(pk=session_id, owner__classrooms=classroom)
        .first()
    )
    if session is None:
        raise Http404
    name = session.owner.get_full_name() or session.owner.username
    if session.state in LIVE_STATES and services.request_stop(session, EndReason.INSTRUCTOR):
        record(request.user, Action.SESSION_STOPPED, session=session, by="instructor",
               classroom=classroom.name)  # fmt: skip
        # A database write, as the admin's Stop: the reconciler's next pass carries it out.
        async_to_sync(events.session_changed)(session.pk)
        messages.success(request, _("Stopping %(student)s's lab.") % {"student": name})
    else:
        messages.info(request, _("%(student)s's lab had already ended.") % {"student": name})
    return redirect("teaching:class", pk)


class QuotasForm(forms.ModelForm):
    class Meta:
        model = Classroom
        fields = ["max_running", "minutes_per_day"]


@require_POST
@instructor_required
def set_quotas(request, pk: int):
    """The class's quotas, by its instructor (0: no limit); checked at each Start."""
    classroom = _taught_by(request.user, pk)
    before = {"max_running": classroom.max_running, "minutes_per_day": classroom.minutes_per_day}
    form = QuotasForm(request.POST, instance=classroom)
    if form.is_valid():
        form.save()
        record(request.user, Action.QUOTA_CHANGED, target=classroom.name, before=before,
               after={f: form.cleaned_data[f] for f in before})  # fmt: skip
        messages.success(request, _("The class's limits are saved."))
    else:
        messages.error(request, _("Limits are whole numbers, 0 for none."))
    return redirect("teaching:class", pk)


@instructor_required
def export_csv(request, pk: int):
    classroom = _taught_by(request.user, pk)
    response = HttpResponse(
        csv_io.export_grid(class_grid(classroom)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="class-{classroom.pk}-{stamp}.csv"'
    return response


@never_cache  # the result page shows passwords: no copy in the browser's cache
@instructor_required
def import_students(request, pk: int):
    classroom = _taught_by(request.user, pk)
    errors: list[str] = []
    request.session.pop(PASSWORDS_KEY, None)  # a new import: the last one's are gone
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            errors = [_("Choose a CSV file.")]
        else:
            result = csv_io.import_students(upload.read(csv_io.MAX_IMPORT_BYTES + 1), classroom)
            errors = result.errors
            if not errors:
                # The usernames, never the passwords.
                record(request.user, Action.ACCOUNTS_IMPORTED, target=classroom.name,
                       count=len(result.created), classroom=classroom.pk,
                       usernames=[username for username, _pw in result.created])  # fmt: skip
                request.session[PASSWORDS_KEY] = {
                    "class": classroom.pk,
                    "rows": result.created,
                    "at": time.time(),
                }
                return render(
                    request,
                    "teaching/import_done.html",
                    {"classroom": classroom, "created": result.created},
                )
    return render(request, "teaching/import.html", {"classroom": classroom, "errors": errors})


@never_cache
@require_POST
@instructor_required
def download_passwords(request, pk: int):
    """The passwords of the import just made, once: they are not kept anywhere after."""
    classroom = _taught_by(request.user, pk)
    kept = request.session.pop(PASSWORDS_KEY, None)
    fresh = kept and time.time() - kept.get("at", 0) < PASSWORDS_KEPT_SECONDS
    if not fresh or kept.get("class") != classroom.pk:
        messages.error(request, _("The passwords were shown once and are no longer available."))
        return redirect("teaching:class", pk)
    response = HttpResponse(
        csv_io.passwords_csv([tuple(r) for r in kept["rows"]]),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="class-{classroom.pk}-passwords.csv"'
    return response
