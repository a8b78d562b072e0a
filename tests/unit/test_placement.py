"""Where a Start lands, without engines: candidates of the lab's pool with its labels,
room by sessions, CPUs and memory, spreading, draining and down hosts skipped, the queue
when every host is full, and the class quotas. The same placement on real engines, with
sessions that start: tests/pools/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.hosts.models import Health, Host, Pool
from apps.sessions import services
from apps.sessions.errors import LabError
from apps.sessions.models import LabSession, State
from apps.teaching.models import Classroom, Enrollment
from apps.teaching.quotas import minutes_used_today, today_midnight
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(db):
    Host.objects.all().delete()  # the local engines the migration adds
    return Pool.objects.get_or_create(name="default")[0]


def host(pool, name: str, **fields) -> Host:
    defaults = {
        "engine": "docker", "backend": "docker", "endpoint": f"unix:///run/{name}.sock",
        "health": Health.UP, "max_sessions": 10, "max_cpus": 8, "max_memory_mib": 8192,
    }  # fmt: skip
    return Host.objects.create(pool=pool, name=name, **(defaults | fields))


def student(django_user_model, name: str):
    return django_user_model.objects.create_user(username=name, password="x")


def start(user, lab) -> LabSession:
    return services.start_session(user, lab)[0]


def test_starts_spread_over_the_pools_hosts(pool, hello_lab, django_user_model):
    a, b = host(pool, "a"), host(pool, "b")
    placed = [start(student(django_user_model, f"s{i}"), hello_lab).host for i in range(6)]
    assert placed.count(a) == placed.count(b) == 3
    assert {s.backend for s in LabSession.objects.all()} == {a.backend_key, b.backend_key}


def test_a_full_host_is_skipped_and_a_full_pool_queues_in_order(pool, hello_lab, django_user_model):
    small = host(pool, "small", max_sessions=1)
    big = host(pool, "big", max_sessions=2)
    first = [start(student(django_user_model, f"s{i}"), hello_lab) for i in range(3)]
    assert sorted(s.host.name for s in first) == ["big", "big", "small"]
    waiting = [start(student(django_user_model, f"w{i}"), hello_lab) for i in range(2)]
    assert [(s.host, s.backend, s.state) for s in waiting] == [(None, "", State.REQUESTED)] * 2
    assert [services.queue_position(s) for s in waiting] == [1, 2]

    # One session ends: the oldest waiting student gets its place, the next moves up.
    LabSession.objects.filter(pk=first[0].pk).update(state=State.STOPPED)
    placed = services.place_queued()
    assert [s.pk for s in placed] == [waiting[0].pk]
    assert placed[0].host in (small, big)
    waiting[1].refresh_from_db()
    assert services.queue_position(waiting[1]) == 1


def test_cpu_and_memory_count_as_well_as_sessions(pool, hello_lab, django_user_model):
    host(pool, "tight", max_cpus=1.0, max_memory_mib=8192)  # hello asks 0.5 CPU each
    start(student(django_user_model, "s1"), hello_lab)
    start(student(django_user_model, "s2"), hello_lab)
    third = start(student(django_user_model, "s3"), hello_lab)
    assert third.backend == "" and services.queue_position(third) == 1


def test_cpu_and_memory_of_zero_are_not_counted(pool, hello_lab, django_user_model):
    host(pool, "roomy", max_sessions=40, max_cpus=0, max_memory_mib=0)
    placed = [start(student(django_user_model, f"s{i}"), hello_lab) for i in range(30)]
    assert all(s.backend for s in placed)  # 30 half-CPU labs, none queued


def test_draining_disabled_and_down_hosts_take_no_new_sessions(pool, hello_lab, django_user_model):
    host(pool, "draining", draining=True)
    host(pool, "off", enabled=False)
    down = host(pool, "down", health=Health.DOWN)
    ok = host(pool, "ok")
    assert {start(student(django_user_model, f"s{i}"), hello_lab).host for i in range(3)} == {ok}
    Host.objects.filter(pk=ok.pk).update(draining=True)
    queued = start(student(django_user_model, "late"), hello_lab)
    assert queued.backend == ""  # the down host may come back: wait, do not fail
    Host.objects.filter(pk=down.pk).update(health=Health.UP)
    assert services.place_queued()[0].host == down


def test_a_lab_that_needs_a_label_only_lands_on_hosts_with_it(pool, hello_lab, django_user_model):
    host(pool, "plain")
    gvisor = host(pool, "gvisor", labels=["runsc"])
    hello_lab.host_labels = ["runsc"]
    hello_lab.save()
    assert {start(student(django_user_model, f"s{i}"), hello_lab).host for i in range(3)} == {
        gvisor
    }
    hello_lab.host_labels = ["gpu"]
    hello_lab.save()
    with pytest.raises(LabError) as refused:
        start(student(django_user_model, "nogpu"), hello_lab)
    assert refused.value.code == "no_host" and "gpu" in str(refused.value.message)


def test_a_lab_runs_in_its_own_pool(pool, hello_lab, django_user_model):
    host(pool, "general")
    exams = Pool.objects.create(name="exams")
    exam_host = host(exams, "exam-1")
    hello_lab.pool = "exams"
    hello_lab.save()
    assert start(student(django_user_model, "s1"), hello_lab).host == exam_host


def test_without_hosts_the_sites_own_engine_runs_it(hello_lab, alice):
    Host.objects.all().delete()
    session = start(alice, hello_lab)
    assert (session.host, session.backend) == (None, "docker")


def test_a_class_quota_of_running_sessions_refuses_with_the_reason(
    pool, hello_lab, alice, bob, carol
):
    host(pool, "a")
    room = Classroom.objects.get(name="Carol's class")
    room.max_running = 1
    room.save()
    Enrollment.objects.create(classroom=room, student=bob)
    start(alice, hello_lab)
    with pytest.raises(LabError) as refused:
        start(bob, hello_lab)
    assert refused.value.code == "class_quota" and "Carol's class" in refused.value.message
    assert start(carol, hello_lab).host is not None  # instructors are not held to it


def test_daily_minutes_count_from_midnight_and_refuse_with_the_reset_time(
    pool, hello_lab, alice, carol
):
    host(pool, "a")
    room = Classroom.objects.get(name="Carol's class")
    room.minutes_per_day = 30
    room.save()
    now = timezone.now()
    if now - today_midnight(now) < timedelta(hours=1):
        pytest.skip("the sessions below would begin before midnight, which is not today")
    earlier = LabSession.objects.create(owner=alice, lab=hello_lab, backend="docker",
                                        state=State.STOPPED)  # fmt: skip
    LabSession.objects.filter(pk=earlier.pk).update(
        started_at=now - timedelta(minutes=25), ended_at=now - timedelta(minutes=5)
    )
    assert 19.9 < minutes_used_today(alice, now) < 20.1
    start(alice, hello_lab)  # 20 of 30 used: allowed
    LabSession.objects.filter(pk=earlier.pk).update(started_at=now - timedelta(minutes=45))
    LabSession.objects.filter(state=State.REQUESTED).update(state=State.STOPPED)
    with pytest.raises(LabError) as refused:
        start(alice, hello_lab)
    assert refused.value.code == "daily_quota" and "30" in refused.value.message


def test_an_instructor_sets_the_class_limits_on_the_class_page(client, carol, dave):
    room = Classroom.objects.get(name="Carol's class")
    client.login(username="dave", password=PASSWORD)  # teaches another class
    assert client.post(f"/classes/{room.pk}/quotas/", {"max_running": 1}).status_code == 403
    client.login(username="carol", password=PASSWORD)
    client.post(f"/classes/{room.pk}/quotas/", {"max_running": 5, "minutes_per_day": 90})
    room.refresh_from_db()
    assert (room.max_running, room.minutes_per_day) == (5, 90)
    page = client.get(f"/classes/{room.pk}/").content.decode()
    assert 'name="minutes_per_day" value="90"' in page


def test_a_new_host_that_gets_an_old_id_gets_a_backend_of_its_own(pool):
    """SQLite gives a removed host's id to the next one: a process that cached the first
    host's backend must not reach the second through it."""
    first = host(pool, "first", endpoint="tcp://10.0.0.1:2376")
    key, pk = first.backend_key, first.pk
    first.delete()
    second = host(pool, "second", endpoint="unix:///run/other.sock", id=pk)
    assert second.pk == pk and second.backend_key != key
