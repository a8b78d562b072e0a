"""The lab validator: proves that every step of a lab can be done, in a fresh sandbox.

For one lab (as ``apps.courses.loader.read_course`` returns it) it starts a sandbox on the
engine the site would use (``apps.sessions.engines``), then for each step in order runs its
check, which must FAIL, then its solve script "as the student would type it" (the image's
own shell and tools, ``Backend.run_script``), then the check again, which must now PASS.
Checks run as the site runs them (``Backend.run_check``: the platform's tools, the site's
check timeout). The sandbox is always removed, whatever happened.

Used by ``manage.py validate_labs``, by the editor's *Validate* button
(``apps.authoring.validation``) and by CI over every shipped lab
(``tests/docker/test_course_labs.py``, ``tests/vm/test_course_vm_labs.py``).

The sandbox carries the site label ``<LABSITE_SITE_NAME>-validate``, not the site's own:
the site's reconciler removes any sandbox of its label that no session row knows, and a
validation has no session row. The price: a sandbox left by a validating process that was
killed outright is nobody's to remove (``docker ps --filter label=labsite.site=…-validate``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from apps.courses.loader import NUMBERED, LabData, StepData
from apps.sessions.engines import DEFAULT_KEY_FOR_KIND, get_backend
from apps.sessions.specs import spec_for
from provisioning.base import (
    LABEL_LAB,
    LABEL_OWNER,
    LABEL_SESSION,
    LABEL_SITE,
    Backend,
    CheckResult,
    Sandbox,
    SandboxError,
    SandboxSpec,
)

log = logging.getLogger(__name__)
#: Seconds a solve script may run: VM labs' solutions pull images, build, run compose.
SOLVE_TIMEOUT = 300.0
#: The backend enforces each timeout; this is ours, for a backend that never answers.
GRACE = 15.0


@dataclass
class StepOutcome:
    """What happened to one step. ``None``: that part did not run (no check, no solve,
    or the solve failed so the check was not run again)."""

    number: int
    slug: str
    title: str
    passed_before: bool | None = None
    solve_exit: int | None = None
    passed_after: bool | None = None
    output_before: str = ""
    solve_output: str = ""
    output_after: str = ""
    seconds: float = 0.0
    #: "" when the step is right; else plain sentences naming what is wrong.
    problem: str = ""
    title_en: str = ""
    has_check: bool = False
    has_solve: bool = False


@dataclass
class LabReport:
    lab: str  # slug
    steps: list[StepOutcome] = field(default_factory=list)
    seconds: float = 0.0
    #: The sandbox could not start, or stopped or became unreachable during a step.
    error: str = ""
    #: What the engine said about ``error`` (an image build's error, say): for the author.
    error_detail: str = ""
    kind: str = ""
    title: str = ""
    #: Seconds until the sandbox was usable (image build and VM boot included).
    start_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error and not any(step.problem for step in self.steps)

    @property
    def problems(self) -> list[str]:
        """One line per thing wrong, naming the step: for logs and test messages."""
        lines = [f"step {s.number} ({s.slug}): {s.problem}" for s in self.steps if s.problem]
        if self.error:
            lines.append(f"{self.error} {self.error_detail}".strip())
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok, "problems": self.problems}


Progress = Callable[[str, StepOutcome | None], Awaitable[None] | None]


@dataclass(frozen=True)
class _Limits:
    check: float
    solve: float


class _SandboxLost(Exception):
    """The sandbox stopped or its engine stopped answering in the middle of a step."""

    def __init__(self, outcome: StepOutcome, error: SandboxError) -> None:
        super().__init__(str(error))
        self.outcome, self.error = outcome, error


async def validate_lab(
    lab: LabData,
    *,
    on_progress: Progress | None = None,
    site: str | None = None,
    check_timeout: float | None = None,
    solve_timeout: float = SOLVE_TIMEOUT,
) -> LabReport:
    """Validate ``lab`` in a fresh sandbox of its own; see the module docstring.

    ``on_progress("starting", None)`` is called before the sandbox starts,
    ``("step", outcome)`` after each step, ``("done", None)`` at the end; it may be a
    coroutine function. ``site`` is the sandbox's site label (default
    ``<LABSITE_SITE_NAME>-validate``). ``check_timeout`` defaults to the site's
    ``LABSITE_CHECK_TIMEOUT``: a check slower than that fails for students too.
    Never raises for a broken lab or a sandbox that would not start: the report says so.
    """
    began = time.monotonic()
    report = LabReport(lab=lab.slug, kind=lab.kind, title=lab.title)
    limits = _Limits(check=check_timeout or settings.LABSITE_CHECK_TIMEOUT, solve=solve_timeout)
    spec = lab_spec(lab, site=site or f"{settings.LABSITE_SITE_NAME}-validate")
    backend = get_backend(DEFAULT_KEY_FOR_KIND[lab.kind])
    await _tell(on_progress, "starting", None)
    try:
        box = await _start(backend, spec, lab.kind)
        report.start_seconds = round(time.monotonic() - began, 1)
        for step in lab.steps:
            outcome = await _run_step(backend, box, step, limits)
            report.steps.append(outcome)
            await _tell(on_progress, "step", outcome)
    except _SandboxLost as lost:
        report.steps.append(lost.outcome)
        report.error = _("The sandbox stopped or could not be reached during step %(n)d: %(e)s") % {
            "n": lost.outcome.number,
            "e": lost.error.message,
        }
        report.error_detail = lost.error.detail
        await _tell(on_progress, "step", lost.outcome)
    except SandboxError as exc:
        report.error = _("The lab's sandbox could not start: %(e)s") % {"e": exc.message}
        report.error_detail = exc.detail
    finally:
        await _remove(backend, spec)
        report.seconds = round(time.monotonic() - began, 1)
    log.info("validated lab %s in %.1f s: %s", lab.slug, report.seconds,
             "ok" if report.ok else "; ".join(report.problems))  # fmt: skip
    await _tell(on_progress, "done", None)
    return report


def lab_spec(lab: LabData, *, site: str) -> SandboxSpec:
    """The sandbox a student would get for ``lab`` (apps.sessions.specs.sandbox_spec),
    named and labelled for one validation run."""
    run = uuid.uuid4().hex[:12]
    module_dir = Path(lab.source_dir).parent.parent.name
    module = match[2] if (match := NUMBERED.match(module_dir)) else module_dir
    # The same spec a student gets, so the image named after the lab's Dockerfile is the
    # same too: one built for students is reused here, and one built here serves them.
    return spec_for(
        lab,
        name=f"{site}-v{run}",
        labels={
            LABEL_SITE: site,
            LABEL_SESSION: f"validate-{run}",
            LABEL_OWNER: "validator",
            LABEL_LAB: f"{module}/{lab.slug}",
        },
    )


async def _start(backend: Backend, spec: SandboxSpec, kind: str) -> Sandbox:
    timeout = settings.LABSITE_START_TIMEOUT[kind]
    try:
        return await asyncio.wait_for(backend.start(spec, timeout=timeout), timeout + GRACE)
    except TimeoutError:
        raise SandboxError(
            _("The sandbox did not start within %(s)d seconds.") % {"s": timeout}
        ) from None


async def _remove(backend: Backend, spec: SandboxSpec) -> None:
    # Also after a failed or cancelled start: it may have left something half-made.
    try:
        await backend.stop(Sandbox(name=spec.name, engine_id="", labels=dict(spec.labels)))
    except SandboxError as exc:
        log.warning("validation sandbox %s not removed: %s %s", spec.name, exc, exc.detail)


async def _run_step(backend: Backend, box: Sandbox, step: StepData, limits: _Limits) -> StepOutcome:
    began = time.monotonic()
    outcome = StepOutcome(
        number=step.number,
        slug=step.slug,
        title=step.title,
        title_en=step.title_en,
        has_check=bool(step.check_script.strip()),
        has_solve=bool(step.solve_script.strip()),
    )
    before = solved = after = None
    try:
        if outcome.has_check:
            before = await _run(backend.run_check, box, step.check_script, limits.check)
            outcome.passed_before, outcome.output_before = before.passed, before.output
        if outcome.has_solve:
            solved = await _run(backend.run_script, box, step.solve_script, limits.solve)
            outcome.solve_exit, outcome.solve_output = solved.exit_code, solved.output
        if outcome.has_check and solved is not None and solved.passed:
            after = await _run(backend.run_check, box, step.check_script, limits.check)
            outcome.passed_after, outcome.output_after = after.passed, after.output
    except SandboxError as exc:
        outcome.seconds = round(time.monotonic() - began, 1)
        outcome.problem = _("The sandbox stopped or could not be reached during this step.")
        raise _SandboxLost(outcome, exc) from exc
    outcome.problem = " ".join(_problems(before, solved, after, limits))
    outcome.seconds = round(time.monotonic() - began, 1)
    return outcome


async def _run(
    call: Callable[..., Awaitable[CheckResult]], box: Sandbox, script: str, timeout: float
) -> CheckResult:
    try:
        return await asyncio.wait_for(call(box, script, timeout=timeout), timeout + GRACE)
    except TimeoutError:
        return CheckResult(passed=False, exit_code=None, output="", timed_out=True)


def _problems(
    before: CheckResult | None,
    solved: CheckResult | None,
    after: CheckResult | None,
    limits: _Limits,
) -> list[str]:
    """What is wrong with one step, in the order it happened; empty when it is right."""
    problems = []
    check_time = {"s": f"{limits.check:g}"}
    if before is not None:
        if solved is None:
            problems.append(
                _("The step has a check but no solve script, so nothing shows the check can pass.")
            )
        if before.timed_out:
            problems.append(
                _("The check ran longer than %(s)s seconds before the solve script.") % check_time
            )
        elif before.passed:
            problems.append(
                _(
                    "The check passes before the solve script ran: it accepts a student who did "
                    "nothing."
                )
            )
        elif not before.output:
            problems.append(
                _(
                    "The check fails before the solve script without printing anything: a "
                    "failing check should tell the student what is missing."
                )
            )
    if solved is not None and not solved.passed:
        if solved.timed_out:
            problems.append(
                _("The solve script did not finish within %(s)s seconds.")
                % {"s": f"{limits.solve:g}"}
            )
        else:
            problems.append(
                _(
                    "The solve script exited with code %(code)s: what the step tells the student "
                    "to do does not work as written."
                )
                % {"code": solved.exit_code}
            )
    if after is not None:
        if after.timed_out:
            problems.append(
                _("The check ran longer than %(s)s seconds after the solve script.") % check_time
            )
        elif not after.passed:
            problems.append(_("The check still fails after the solve script ran."))
    return problems


async def _tell(on_progress: Progress | None, kind: str, outcome: StepOutcome | None) -> None:
    if on_progress is None:
        return
    try:
        result = on_progress(kind, outcome)
        if inspect.isawaitable(result):
            await result
    except Exception:
        # A progress display that fails must not leave a sandbox running or lose the report.
        log.exception("progress callback of the lab validator failed (%s)", kind)
