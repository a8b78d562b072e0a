"""How big each warm pool should be: the lab file, the admin's size, a class's scheduled
lab (with its form on the class page), and what the keeper plans from them. The pools
against the real engine are in tests/docker/test_warm_pools.py.

Personas (tests/conftest.py): alice is in Carol's class; carol teaches it; dave teaches
another class."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.courses.models import Lab
from apps.pools.keeper import plan
from apps.pools.models import Member, PoolSize, WarmSandbox
from apps.pools.targets import targets
from apps.sessions.models import LabSession, State
from apps.teaching.models import Classroom, ScheduledLab

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(carol, course):
    room = Classroom.objects.get(name="Carol's class")
    room.course = course
    room.save()
    return room


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def test_the_lab_file_sets_a_pool_and_the_admin_size_replaces_it(hello_lab):
    now = timezone.now()
    assert hello_lab.pk not in targets(now)  # no pool unless asked
    Lab.objects.filter(pk=hello_lab.pk).update(warm_pool=3)
    assert targets(now)[hello_lab.pk] == 3
    PoolSize.objects.create(lab=hello_lab, size=0, note="exam week")
    assert hello_lab.pk not in targets(now)


def test_a_scheduled_lab_raises_the_pool_around_its_time_for_those_not_started(
    room, alice, bob, hello_lab
):
    room.students.add(bob)
    starts = timezone.now() + timedelta(minutes=10)
    ScheduledLab.objects.create(classroom=room, lab=hello_lab, starts_at=starts)
    assert targets(timezone.now())[hello_lab.pk] == 2  # one per student
    assert hello_lab.pk not in targets(starts - timedelta(minutes=20))  # too early
    assert hello_lab.pk not in targets(starts + timedelta(minutes=40))  # long over
    LabSession.objects.create(owner=alice, lab=hello_lab, backend="docker", state=State.RUNNING)
    assert targets(timezone.now())[hello_lab.pk] == 1  # alice has hers


def test_the_instructor_schedules_a_lab_on_the_class_page(room, carol, hello_lab):
    client = client_for(carol)
    page = client.get(f"/classes/{room.pk}/").content.decode()
    assert "Scheduled labs" in page and "Schedule the lab" in page
    when = (timezone.localtime() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    answer = client.post(
        f"/classes/{room.pk}/schedule/", {"lab": hello_lab.pk, "starts_at": when, "sandboxes": 30}
    )
    assert answer.status_code == 302
    row = ScheduledLab.objects.get(classroom=room)
    assert (row.lab, row.sandboxes, row.created_by) == (hello_lab, 30, carol)
    assert "30" in client.get(f"/classes/{room.pk}/").content.decode()
    # A time long past is refused, and said why.
    past = (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = client.post(
        f"/classes/{room.pk}/schedule/", {"lab": hello_lab.pk, "starts_at": past}, follow=True
    ).content.decode()
    assert "This time has passed." in page and ScheduledLab.objects.count() == 1
    client.post(f"/classes/{room.pk}/schedule/{row.pk}/remove/")
    assert not ScheduledLab.objects.exists()


def test_another_instructor_cannot_schedule_or_remove_for_the_class(room, dave, hello_lab):
    row = ScheduledLab.objects.create(classroom=room, lab=hello_lab, starts_at=timezone.now())
    client = client_for(dave)
    when = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    answer = client.post(f"/classes/{room.pk}/schedule/", {"lab": hello_lab.pk, "starts_at": when})
    assert answer.status_code == 403
    assert client.post(f"/classes/{room.pk}/schedule/{row.pk}/remove/").status_code == 403
    assert ScheduledLab.objects.count() == 1


def test_the_keeper_refills_a_few_at_a_time_and_never_during_cold_starts(alice, hello_lab):
    Lab.objects.filter(pk=hello_lab.pk).update(warm_pool=5)
    # A student's cold start is under way: the engine is theirs first.
    cold = LabSession.objects.create(owner=alice, lab=hello_lab, backend="docker",
                                     state=State.STARTING)  # fmt: skip
    assert plan(timezone.now()).start == []
    cold.delete()
    first = plan(timezone.now())
    assert len(first.start) == settings.LABSITE_WARM_POOL_PARALLEL
    # The ones starting count: the next pass adds none until they are done.
    assert plan(timezone.now()).start == []


def test_the_keeper_removes_ready_members_of_an_edited_lab_and_beyond_the_target(hello_lab):
    Lab.objects.filter(pk=hello_lab.pk).update(warm_pool=1)
    members = plan(timezone.now()).start
    WarmSandbox.objects.filter(pk__in=[m.pk for m in members]).update(
        state=Member.READY, ready_at=timezone.now(), lease_owner=""
    )
    assert plan(timezone.now()).remove == []
    Lab.objects.filter(pk=hello_lab.pk).update(setup_script="touch /tmp/edited")
    assert plan(timezone.now()).remove == [members[0].pk]  # stale: made before the edit


def test_a_vm_lab_cannot_ask_for_a_warm_pool(tmp_path):
    from apps.courses.loader import ContentError, LabPolicy, _Files, _read_lab

    lab = tmp_path / "vmlab"
    (lab / "steps").mkdir(parents=True)
    (lab / "lab.yaml").write_text(
        "title: VM\ntitle_en: VM\nstatus: planned\nwarm_pool: 3\n"
        "environment:\n  kind: vm\n  template: tiny\n"
    )
    with pytest.raises(ContentError, match="only container labs have warm pools"):
        _read_lab(_Files(tmp_path), LabPolicy.from_settings(), lab, 0)
