"""The lab page: a lab's instructions beside the student's own session and terminal; the
student's running labs, each with a link to its page and a Stop button."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.courses.models import Lab, LabKind, Step
from apps.courses.progress import attempts_by_step, passed_steps
from apps.sessions import runner
from apps.sessions.models import LIVE_STATES, EndReason, LabSession
from apps.sessions.serializers import session_json


def lab(request, course_slug: str, module_slug: str, lab_slug: str):
    lab = get_object_or_404(
        Lab.objects.select_related("module__course"),
        module__course__slug=course_slug,
        module__slug=module_slug,
        slug=lab_slug,
    )
    steps = list(lab.steps.all())
    session = None
    if request.user.is_authenticated:
        active = LabSession.objects.filter(owner=request.user, lab=lab, state__in=LIVE_STATES)
        if found := active.select_related("lab", "owner").first():
            session = session_json(found)
            if found.steps:
                # The steps the session began with: what its Check buttons check.
                known = {f.name for f in Step._meta.fields}
                steps = [
                    Step(lab=lab, **{k: v for k, v in s.items() if k in known}) for s in found.steps
                ]
    passed = passed_steps(request.user, lab)
    tries = attempts_by_step(request.user, lab)
    for step in steps:
        step.passed = step.number in passed
        step.tries_left = tries.get(step.number)
    return render(
        request,
        "courses/lab.html",
        {
            "lab": lab,
            "module": lab.module,
            "course": lab.module.course,
            "steps": steps,
            "session_json": json.dumps(session) if session else "",
            "passed_count": len(passed),
            # A guest has one serial console; containers get a tmux session per tab.
            "max_tabs": 1 if lab.kind == LabKind.VM else settings.LABSITE_MAX_TABS,
        },
    )


@login_required
def running(request):
    """The student's own live sessions (queued, starting, running), newest first."""
    sessions = (
        LabSession.objects.filter(owner=request.user, state__in=LIVE_STATES)
        .select_related("lab__module__course", "owner")
        .order_by("-created_at")
    )
    rows = [{"session": s, "data": session_json(s)} for s in sessions]
    return render(
        request,
        "courses/running.html",
        {"rows": rows, "limit": settings.LABSITE_MAX_ACTIVE_SESSIONS},
    )


@require_POST
async def stop_running(request, session_id):
    """Stop one of the student's own sessions from the running-labs page (no JavaScript)."""
    user = await request.auser()
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    session = (
        await LabSession.objects.select_related("lab").filter(pk=session_id, owner=user).afirst()
    )
    if session and await runner.stop_by(user, session, EndReason.USER):
        title = session.lab.display_title
        messages.success(request, _("The lab “%(lab)s” is stopping.") % {"lab": title})
    return redirect("sessions:running")
