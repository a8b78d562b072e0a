"""Sessions and check results as the JSON the API and the events socket send."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from apps.courses.progress import passed_steps
from apps.sessions import progress_messages
from apps.sessions.models import LabSession
from apps.sessions.services import queue_position
from provisioning.base import CheckResult


def session_json(session: LabSession) -> dict:
    passed = passed_steps(session.owner, session.lab)
    place = queue_position(session)
    message = progress_messages.translate(session.progress_message)
    if place is not None:
        message = _(
            "All lab servers are busy: you are number %(n)d in the queue. Keep this page "
            "open; your lab starts as soon as a place frees."
        ) % {"n": place}
    return {
        "id": str(session.pk),
        "lab": session.lab_id,
        "state": session.state,
        "state_label": session.state_label,
        "end_reason": session.end_reason,
        "end_reason_label": str(session.get_end_reason_display()) if session.end_reason else "",
        "progress": {
            "percent": session.progress_percent,
            "message": message,
        },
        "queue_position": place,
        "queued": place is not None,
        "failure_message": session.failure_message,
        "created_at": _iso(session.created_at),
        "started_at": _iso(session.started_at),
        "expires_at": _iso(session.expires_at),
        "seconds_left": session.seconds_left(),
        "can_extend": session.can_extend(),
        "terminal_url": f"/ws/sessions/{session.pk}/terminals/",
        "events_url": f"/ws/sessions/{session.pk}/events/",
        "url": reverse("api:session", args=[session.pk]),
        "steps": [
            {"number": step.number, "title": step.display_title, "passed": step.number in passed}
            for step in session.lab.steps.all()
        ],
    }


def check_json(step_number: int, result: CheckResult, attempts_left: int | None = None) -> dict:
    """A check's verdict; ``attempts_left`` is given for a step that limits failed checks."""
    return {
        "step": step_number,
        "passed": result.passed,
        "output": result.output,
        "timed_out": result.timed_out,
        "attempts_left": attempts_left,
    }


def _iso(value) -> str | None:
    return value.isoformat() if value else None
