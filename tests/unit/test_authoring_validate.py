"""*Validate* runs the lab validator in the background of the web process and the page
polls a row for its progress, then its report with the broken steps."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.test import AsyncClient
from django.utils import timezone

from apps.authoring import validation
from apps.authoring.models import CourseRole, CourseRoleKind, Validation
from apps.courses.models import Lab
from apps.sessions import runner
from tests.unit import test_authoring_fixtures as fx

# The shared fixtures, by name.
content, testcourse = fx.content, fx.testcourse

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def in_english(settings):
    """These tests read the English messages; the site's default language is Chinese."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@dataclasses.dataclass
class Outcome:
    number: int
    title: str
    passed_before: bool
    solve_exit: int
    passed_after: bool
    outputs: dict
    seconds: float
    problem: str


@dataclasses.dataclass
class Report:
    steps: list[Outcome]

    @property
    def ok(self) -> bool:
        return not any(s.problem for s in self.steps)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "steps": [dataclasses.asdict(s) for s in self.steps]}


class FakeValidator:
    """Reports step 1 fine and step 2 broken; waits at ``gate`` after the first step so the
    test can look at the progress while it runs. Awaits some on_progress calls, not others
    (the real one may do either)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.labs = []

    async def __call__(self, lab, *, on_progress=None, site=None):
        self.labs.append(lab)
        on_progress("starting", None)
        outcomes = []
        for step in lab.steps:
            broken = step.number == 2
            outcome = Outcome(
                step.number, step.title, False, 0, not broken, {"after": "检查输出"}, 1.5,
                "the check still fails after the solution" if broken else "",
            )  # fmt: skip
            outcomes.append(outcome)
            await on_progress("step", outcome)
            await self.gate.wait()
        on_progress("done", None)
        return Report(outcomes)


@pytest.fixture
def fake(monkeypatch):
    found = FakeValidator()
    monkeypatch.setattr(validation, "validator", lambda: found)
    return found


async def editor_client(carol, course) -> AsyncClient:
    await CourseRole.objects.acreate(course=course, user=carol, role=CourseRoleKind.OWNER)
    client = AsyncClient()
    await database_sync_to_async(client.force_login)(carol)
    return client


async def poll_until(client, url, predicate, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        row = (await client.get(url)).json()
        if predicate(row) or loop.time() > deadline:
            return row
        await asyncio.sleep(0.05)


async def test_validate_shows_progress_then_the_report(carol, testcourse, fake):
    client = await editor_client(carol, testcourse)
    lab = await Lab.objects.aget(slug="hello")
    response = await client.post(f"/authoring/labs/{lab.pk}/validate/")
    assert response.status_code == 202
    url = response.json()["url"]

    running = await poll_until(client, url, lambda row: len(row["steps"]) == 1)
    assert running["status"] == "running" and not running["done"]
    assert running["steps"][0]["number"] == 1 and running["steps"][0]["passed_after"] is True

    fake.gate.set()
    await runner.wait_idle()
    done = (await client.get(url)).json()
    assert done["done"] and done["status"] == "failed" and not done["ok"]
    broken = [s for s in done["report"]["steps"] if s["problem"]]
    assert [s["number"] for s in broken] == [2]
    assert done["report"]["steps"][1]["outputs"] == {"after": "检查输出"}
    # The validator got the lab as its saved files say.
    assert [s.slug for s in fake.labs[0].steps] == ["write", "slow"]


async def test_a_run_whose_process_died_is_reported_ended(carol, testcourse):
    client = await editor_client(carol, testcourse)
    lab = await Lab.objects.aget(slug="hello")
    row = await Validation.objects.acreate(lab=lab, user=carol)
    await Validation.objects.filter(pk=row.pk).aupdate(
        updated_at=timezone.now() - timedelta(minutes=5)
    )
    result = (await client.get(f"/authoring/validations/{row.pk}/")).json()
    assert result["done"] and result["status"] == "error"
    assert "stopped" in result["message"]


async def test_a_validator_error_is_reported(carol, testcourse, monkeypatch):
    async def broken(lab, *, on_progress=None, site=None):
        raise RuntimeError("engine on fire")

    monkeypatch.setattr(validation, "validator", lambda: broken)
    client = await editor_client(carol, testcourse)
    lab = await Lab.objects.aget(slug="hello")
    url = (await client.post(f"/authoring/labs/{lab.pk}/validate/")).json()["url"]
    await runner.wait_idle()
    result = (await client.get(url)).json()
    assert result["status"] == "error" and "engine on fire" in result["message"]
