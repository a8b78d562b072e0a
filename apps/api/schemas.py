"""What the API answers, as pydantic schemas: the OpenAPI document is generated from them.

``Session`` and ``CheckResult`` describe the dicts built by ``apps.sessions.serializers``
(the events socket sends the same ones); the views send those dicts as they are, and
tests/unit/test_api.py keeps the two in step."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from ninja import Schema

from apps.courses.models import LabKind, LabStatus
from apps.sessions.models import EndReason, State


class ErrorDetail(Schema):
    code: str
    message: str
    #: Validation errors only (422): one entry per bad parameter, as pydantic reports it.
    details: list[dict[str, Any]] | None = None


class Error(Schema):
    """Every error, whatever its status: a code for programs, a message for people."""

    error: ErrorDetail


#: The errors any operation may answer besides its own: not logged in or a bad token (401),
#: no CSRF token (403), a malformed parameter (422), the site failing (500).
COMMON_ERRORS = (401, 403, 422, 500)


def errors(*statuses: int) -> tuple[int, ...]:
    """The error statuses of an operation, for its ``response={...: Error}``."""
    return tuple(sorted({*COMMON_ERRORS, *statuses}))


class Lab(Schema):
    id: int
    slug: str
    title: str
    summary: str
    module: str
    kind: LabKind
    status: LabStatus
    url: str
    start_url: str


class LabList(Schema):
    labs: list[Lab]


class Progress(Schema):
    percent: int
    message: str


class StepState(Schema):
    number: int
    title: str
    passed: bool


class Session(Schema):
    """A lab session: follow ``events_url`` (WebSocket) instead of polling this."""

    id: UUID
    lab: int
    state: State
    state_label: str
    end_reason: EndReason | Literal[""]
    end_reason_label: str
    progress: Progress
    #: 1 for the next to start when every lab server is full; null when not waiting.
    queue_position: int | None = None
    queued: bool = False  # waiting for a free place (queue_position says which)
    failure_message: str
    created_at: datetime
    started_at: datetime | None
    expires_at: datetime | None
    seconds_left: int | None
    can_extend: bool
    terminal_url: str
    events_url: str
    url: str
    steps: list[StepState]


class CheckResult(Schema):
    step: int
    passed: bool
    output: str
    timed_out: bool
    #: Failed checks the step still allows (a quiz); null when it has no limit.
    attempts_left: int | None = None
