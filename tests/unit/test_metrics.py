"""/metrics: who may scrape it, and that its figures are the database's.

Personas (tests/conftest.py): alice and bob are students, carol teaches alice's class,
dave another class, erin is an administrator; here they are simply the owners of sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.courses.models import Lab
from apps.hosts.models import Health, Host, Pool
from apps.recordings.models import Recording
from apps.sessions.models import CheckRun, EndReason, LabSession, State

pytestmark = pytest.mark.django_db

TOKEN = "prometheus-scrape-token-7f3a"


@pytest.fixture
def token(settings):
    settings.LABSITE_METRICS_TOKEN = TOKEN
    settings.LABSITE_METRICS_ALLOW = []
    return TOKEN


def scrape(client, token: str = TOKEN, **extra):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def values(response) -> dict[tuple[str, frozenset], float]:
    """Every sample of the exposition, by its name and labels."""
    text = response.content.decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


# -- who may scrape --------------------------------------------------------------------------


def test_nobody_may_scrape_when_neither_token_nor_networks_are_configured(client, settings):
    settings.LABSITE_METRICS_TOKEN = ""
    settings.LABSITE_METRICS_ALLOW = []
    client.cookies["django_language"] = "en"

    for response in (
        client.get("/metrics", REMOTE_ADDR="127.0.0.1"),
        client.get("/metrics", HTTP_AUTHORIZATION="Bearer "),
    ):
        assert response.status_code == 403
        assert response["Content-Type"].startswith("text/plain")
        text = response.content.decode()
        assert "turned off" in text
        assert "LABSITE_METRICS_TOKEN" in text and "LABSITE_METRICS_ALLOW" in text


def test_a_request_without_the_token_is_refused_and_told_how(client, token):
    response = client.get("/metrics")

    assert response.status_code == 403
    text = response.content.decode()
    assert "Authorization: Bearer <token>" in text and "LABSITE_METRICS_ALLOW" in text
    assert TOKEN not in text
    assert b"labsite_" not in response.content


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Token {TOKEN}", TOKEN, "Bearer", "Bearer é"],
)
def test_a_wrong_token_is_refused(client, token, header):
    assert client.get("/metrics", HTTP_AUTHORIZATION=header).status_code == 403


def test_the_right_token_is_answered_with_the_text_format(client, token):
    response = scrape(client)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert response["Cache-Control"] == "no-store"
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {"labsite_sessions", "labsite_start_latency_seconds", "labsite_checks"} <= names
    # A private registry: no figures of this one Python process, which differ per process.
    assert not any(name.startswith(("python_", "process_")) for name in names)


def test_the_bearer_scheme_is_case_insensitive(client, token):
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200


def test_addresses_are_allowed_by_network(client, settings):
    settings.LABSITE_METRICS_TOKEN = ""
    settings.LABSITE_METRICS_ALLOW = ["127.0.0.1", "10.0.0.0/8", "fd00::/8"]

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="fd00::17").status_code == 200
    # An IPv4 scraper seen through a dual-stack listener.
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.9.9.9").status_code == 200

    refused = client.get("/metrics", REMOTE_ADDR="192.168.1.5")
    assert refused.status_code == 403
    assert "192.168.1.5" in refused.content.decode()
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.2").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="").status_code == 403


@pytest.mark.parametrize("header", ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"])
def test_an_allowed_address_proves_nothing_through_a_reverse_proxy(client, settings, header):
    """Behind nginx every request comes from nginx's address: only the token counts."""
    settings.LABSITE_METRICS_TOKEN = TOKEN
    settings.LABSITE_METRICS_ALLOW = ["127.0.0.1"]
    proxied = {"REMOTE_ADDR": "127.0.0.1", header: "203.0.113.9"}

    assert client.get("/metrics", **proxied).status_code == 403
    assert scrape(client, **proxied).status_code == 200


def test_token_or_address_either_suffices(client, settings):
    settings.LABSITE_METRICS_TOKEN = TOKEN
    settings.LABSITE_METRICS_ALLOW = ["10.0.0.0/8"]

    assert scrape(client, REMOTE_ADDR="192.168.1.5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert scrape(client, "wrong", REMOTE_ADDR="192.168.1.5").status_code == 403


def test_a_refusal_never_reads_the_database(client, token, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/metrics").status_code == 403


def test_a_bad_allow_entry_is_ignored_and_warned_about_at_startup(client, settings):
    settings.LABSITE_METRICS_TOKEN = ""
    settings.LABSITE_METRICS_ALLOW = ["10.0.0.0/33", "10.0.0.0/8"]

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    warnings = [m for m in run_checks() if m.id == "metrics.W001"]
    assert len(warnings) == 1 and "10.0.0.0/33" in warnings[0].msg


def test_only_get_and_head(client, token):
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405
    assert client.head("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


# -- the figures -----------------------------------------------------------------------------


@pytest.fixture
def hosts(db):
    pool, _ = Pool.objects.get_or_create(name="default")
    node1 = Host.objects.create(
        pool=pool, name="node-1", engine="docker", backend="docker", health=Health.UP,
        max_sessions=10, max_cpus=4.0, max_memory_mib=8192,
    )  # fmt: skip
    node2 = Host.objects.create(
        pool=Pool.objects.create(name="gpu"), name="node-2", engine="docker",
        backend="docker", health=Health.DOWN, draining=True, enabled=False,
    )  # fmt: skip
    return node1, node2


def session(owner, slug, state, host=None, *, backend="docker", latency=None, reason=""):
    """A session created 10 minutes ago that started ``latency`` seconds later (if at all)."""
    row = LabSession.objects.create(
        owner=owner, lab=Lab.objects.get(slug=slug), host=host, backend=backend, state=state,
        end_reason=reason,
    )  # fmt: skip
    created = timezone.now() - timedelta(minutes=10)
    started = created + timedelta(seconds=latency) if latency is not None else None
    LabSession.objects.filter(pk=row.pk).update(created_at=created, started_at=started)
    row.refresh_from_db()
    return row


@pytest.fixture
def site(hosts, course, alice, bob, carol, dave, erin):
    """A running and a starting session on node-1, two waiting for a start (one in the
    queue, one for the site's own engine), and ended ones: started, failed to start, and
    failed after it ran."""
    node1, node2 = hosts
    running = session(alice, "hello", State.RUNNING, node1, latency=3)
    session(bob, "tiny-vm", State.STARTING, node1)
    session(erin, "hello", State.REQUESTED, backend="")  # queued: no host has room
    session(dave, "hello", State.REQUESTED)  # the site's own engine: not queued
    ended = session(alice, "tiny-vm", State.STOPPED, node1, latency=45)
    session(bob, "hello", State.FAILED, node2, reason=EndReason.ERROR)
    session(erin, "tiny-vm", State.FAILED, node1, latency=0.2, reason=EndReason.EXITED)
    session(carol, "hello", State.STOPPED, node1)  # stopped during its start: no outcome

    for seconds, passed, timed_out in [(0.05, True, False), (0.3, True, False),
                                       (1.5, False, False), (10.0, False, True)]:  # fmt: skip
        CheckRun.objects.create(
            session=running, step=1, passed=passed, timed_out=timed_out, seconds=seconds
        )

    now = timezone.now()
    for tab, (owner_session, ended_at) in enumerate(
        [(running, None), (running, now), (ended, None)]  # the last: a process died
    ):
        Recording.objects.create(
            session=owner_session, tab=tab, started_at=now, ended_at=ended_at,
            path=f"cast-{tab}.cast", cols=80, rows=24,
        )  # fmt: skip


def test_sessions_by_state_and_host_and_the_queue(client, token, site):
    samples = values(scrape(client))

    assert value(samples, "labsite_sessions", state="running", host="node-1") == 1
    assert value(samples, "labsite_sessions", state="starting", host="node-1") == 1
    assert value(samples, "labsite_sessions", state="requested", host="") == 2
    # Zeros are reported too, so a series does not vanish when a host empties.
    assert value(samples, "labsite_sessions", state="stopping", host="node-2") == 0
    assert value(samples, "labsite_sessions_queued") == 1


def test_start_outcomes_and_latency(client, token, site):
    samples = values(scrape(client))

    starts = "labsite_session_starts_total"
    assert value(samples, starts, host="node-1", outcome="running") == 3
    assert value(samples, starts, host="node-1", outcome="failed") == 0
    assert value(samples, starts, host="node-2", outcome="failed") == 1
    assert value(samples, starts, host="node-2", outcome="running") == 0

    latency = "labsite_start_latency_seconds"
    assert value(samples, f"{latency}_count") == 3
    assert value(samples, f"{latency}_sum") == pytest.approx(48.2)
    assert value(samples, f"{latency}_bucket", le="0.25") == 1
    assert value(samples, f"{latency}_bucket", le="5.0") == 2
    assert value(samples, f"{latency}_bucket", le="30.0") == 2
    assert value(samples, f"{latency}_bucket", le="60.0") == 3
    assert value(samples, f"{latency}_bucket", le="+Inf") == 3


def test_host_capacity_use_and_health(client, token, site, hosts):
    Host.objects.create(pool=hosts[0].pool, name="node-3", engine="libvirt", backend="libvirt")
    samples = values(scrape(client))

    assert value(samples, "labsite_host_capacity_sessions", host="node-1", pool="default") == 10
    assert value(samples, "labsite_host_capacity_cpus", host="node-1", pool="default") == 4
    assert value(samples, "labsite_host_capacity_memory_mib", host="node-1", pool="default") == 8192
    assert value(samples, "labsite_host_capacity_sessions", host="node-2", pool="gpu") == 50
    # hello (0.5 CPU, 128 MiB) running and tiny-vm (1 CPU, 256 MiB) starting on node-1.
    assert value(samples, "labsite_host_used_sessions", host="node-1") == 2
    assert value(samples, "labsite_host_used_cpus", host="node-1") == pytest.approx(1.5)
    assert value(samples, "labsite_host_used_memory_mib", host="node-1") == 384
    assert value(samples, "labsite_host_used_sessions", host="node-2") == 0
    assert value(samples, "labsite_host_up", host="node-1") == 1
    assert value(samples, "labsite_host_up", host="node-2") == 0
    assert value(samples, "labsite_host_up", host="node-3") == 0  # not checked yet
    assert value(samples, "labsite_host_draining", host="node-2") == 1
    assert value(samples, "labsite_host_draining", host="node-1") == 0
    assert value(samples, "labsite_host_enabled", host="node-2") == 0


def test_checks_and_terminals(client, token, site, settings):
    samples = values(scrape(client))

    assert value(samples, "labsite_checks_total", outcome="passed") == 2
    assert value(samples, "labsite_checks_total", outcome="failed") == 1
    assert value(samples, "labsite_checks_total", outcome="timed_out") == 1
    duration = "labsite_check_duration_seconds"
    assert value(samples, f"{duration}_count") == 4
    assert value(samples, f"{duration}_sum") == pytest.approx(11.85)
    assert value(samples, f"{duration}_bucket", le="0.1") == 1
    assert value(samples, f"{duration}_bucket", le="0.5") == 2
    assert value(samples, f"{duration}_bucket", le="5.0") == 3
    assert value(samples, f"{duration}_bucket", le="10.0") == 4
    # One open terminal: the closed one and the leftover of an ended session do not count.
    assert value(samples, "labsite_terminals_open") == 1

    settings.LABSITE_RECORDINGS = False  # no recordings, no figure (rather than a false 0)
    assert ("labsite_terminals_open", frozenset()) not in values(scrape(client))


def test_a_scrape_costs_the_same_few_queries_however_many_rows(
    client, token, site, django_assert_max_num_queries
):
    with django_assert_max_num_queries(7):
        assert scrape(client).status_code == 200
