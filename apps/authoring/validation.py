"""*Validate*: run the lab validator on a lab's saved files in the background of the web
process that took the request, writing its progress into a ``Validation`` row that the page
polls (a database row, so any web process can answer the poll).

The task renews the row every HEARTBEAT seconds while it runs; a row left "running" and not
renewed for STALE lost its process (a restart), and the next poll says so.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.authoring.models import Validation, ValidationStatus
from apps.authoring.units import course_dir
from apps.courses.loader import ContentError, LabData, read_course
from apps.courses.models import Lab
from apps.sessions import runner

log = logging.getLogger(__name__)
HEARTBEAT = 10.0
STALE = timedelta(seconds=60)
STEP_FIELDS = ("number", "title", "passed_before", "solve_exit", "passed_after", "outputs",
               "seconds", "problem")  # fmt: skip


def validator():
    """The validator's entry point, looked up when a run starts (tests replace it)."""
    from apps.authoring.validator import validate_lab

    return validate_lab


async def start(user, lab: Lab) -> Validation:
    """Create the row and spawn the run; returns at once."""
    row = await database_sync_to_async(Validation.objects.create)(lab=lab, user=user)
    # A fresh context: the task outlives the request (see runner.kick).
    runner.spawn(run(row.pk, lab.pk), context=contextvars.Context())
    return row


async def run(validation_id, lab_id: int) -> None:
    heartbeat = asyncio.get_running_loop().create_task(_beat(validation_id))
    try:
        data = await database_sync_to_async(lab_data)(lab_id)
        report = await validator()(data, on_progress=_progress_writer(validation_id))
        report_dict = report.as_dict()
        await _finish(
            validation_id,
            ValidationStatus.PASSED if report.ok else ValidationStatus.FAILED,
            report=report_dict,
            steps=report_dict.get("steps", []) if isinstance(report_dict, dict) else [],
        )
    except ContentError as exc:
        await _finish(validation_id, ValidationStatus.ERROR, message=str(exc))
    except ImportError:
        log.exception("validation %s: the validator is not installed", validation_id)
        message = _("The lab validator is not installed on this site.")
        await _finish(validation_id, ValidationStatus.ERROR, message=message)
    except Exception as exc:
        # A LabError (a sandbox that would not start) carries words for the author.
        log.exception("validation %s failed", validation_id)
        message = getattr(exc, "message", None) or _("The validation could not run: %(e)s") % {
            "e": exc
        }
        await _finish(validation_id, ValidationStatus.ERROR, message=message)
    finally:
        heartbeat.cancel()


def lab_data(lab_id: int) -> LabData:
    """The lab as its files on disk say now (saved text, not the page's unsaved edits)."""
    lab = Lab.objects.select_related("module__course").get(pk=lab_id)
    module_dir = Path(lab.module.source_dir).name
    course = read_course(course_dir(lab.module.course.slug))
    for module in course.modules:
        if Path(module.source_dir).name == module_dir:
            for found in module.labs:
                if found.slug == lab.slug:
                    return found
    raise ContentError(Path(lab.source_dir), None, _("this lab is no longer in its files"))


def step_json(outcome: Any) -> dict:
    if dataclasses.is_dataclass(outcome):
        return _plain(dataclasses.asdict(outcome))
    if hasattr(outcome, "as_dict"):
        return _plain(outcome.as_dict())
    return _plain({name: getattr(outcome, name, None) for name in STEP_FIELDS})


def _plain(value: Any) -> Any:
    """JSON-safe: the validator's outputs may hold tuples or other objects."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _progress_writer(validation_id):
    """on_progress for the validator. Whether it awaits the call or not, the write happens:
    the call returns the task doing it, and a task may be awaited or left to run."""

    def on_progress(kind: str, outcome: Any = None):
        step = step_json(outcome) if outcome is not None else None
        return runner.spawn(_note(validation_id, kind, step), context=contextvars.Context())

    return on_progress


@database_sync_to_async
def _note(validation_id, kind: str, step: dict | None) -> None:
    row = Validation.objects.filter(pk=validation_id, status=ValidationStatus.RUNNING).first()
    if row is None:
        return
    if step is not None:
        row.steps = [s for s in row.steps if s.get("number") != step.get("number")] + [step]
    row.phase = kind[:16]
    row.save(update_fields=["steps", "phase", "updated_at"])


@database_sync_to_async
def _finish(validation_id, status: str, **fields) -> None:
    Validation.objects.filter(pk=validation_id).update(
        status=status, updated_at=timezone.now(), **fields
    )


async def _beat(validation_id) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT)
        await database_sync_to_async(
            Validation.objects.filter(pk=validation_id, status=ValidationStatus.RUNNING).update
        )(updated_at=timezone.now())


def as_json(row: Validation) -> dict:
    """The row as the page reads it; a running row nobody renewed is reported ended."""
    if row.status == ValidationStatus.RUNNING and timezone.now() - row.updated_at > STALE:
        row.status = ValidationStatus.ERROR
        row.message = _("The validation stopped: the server process running it ended.")
        row.save(update_fields=["status", "message", "updated_at"])
    return {
        "id": str(row.pk),
        "status": row.status,
        "status_label": str(ValidationStatus(row.status).label),
        "done": row.status != ValidationStatus.RUNNING,
        "ok": row.status == ValidationStatus.PASSED,
        "phase": row.phase,
        "message": row.message,
        "steps": row.steps,
        "report": row.report,
    }
