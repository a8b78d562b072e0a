"""The lab page: a lab's instructions beside the student's own session and terminal."""

from __future__ import annotations

import json

from django.conf import settings
from django.shortcuts import get_object_or_404, render

from apps.courses.models import Lab, LabKind, Step
from apps.courses.progress import attempts_by_step, passed_steps
from apps.sessions.models import LIVE_STATES, LabSession
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
