"""The admin's lab-server pages: who may see them, adding a host with its address checked,
draining, removing only an empty host, and the live part the page refreshes."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEntry
from apps.hosts.models import Health, Host, Pool
from apps.sessions import services
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, erin):
    client.login(username="erin", password=PASSWORD)
    client.cookies["django_language"] = "en"
    return client


def add(admin_client, **fields):
    pool = Pool.objects.get_or_create(name="default")[0]
    data = {"name": "lab-2", "pool": pool.pk, "engine": "docker", "endpoint": "",
            "max_sessions": 20, "max_cpus": 8, "max_memory_mib": 16384, "labels": "",
            "enabled": "on"} | fields  # fmt: skip
    return admin_client.post("/hosts/add/", data)


def test_only_admins_see_the_lab_servers(client, alice, carol):
    assert client.get("/hosts/").status_code == 302  # to the login page
    for user in ("alice", "carol"):
        client.login(username=user, password=PASSWORD)
        assert client.get("/hosts/").status_code == 403
        assert client.post("/hosts/add/", {}).status_code == 403


def test_the_dashboard_shows_each_host_its_health_and_load(admin_client, hello_lab, alice):
    session, _ = services.start_session(alice, hello_lab)
    page = admin_client.get("/hosts/").content.decode()
    assert "local-docker" in page and "local-libvirt" in page
    assert "alice" in page and str(session.pk) in page  # with a Stop button
    live = admin_client.get("/hosts/live/").content.decode()
    assert 'data-host="local-docker"' in live and "dash-series" in live


def test_a_host_is_added_with_its_labels_and_audited(admin_client):
    response = add(admin_client, endpoint="unix:///run/pool-2.sock", labels="runsc, KVM")
    assert response.status_code == 302
    host = Host.objects.get(name="lab-2")
    assert (host.labels, host.backend) == (["kvm", "runsc"], "docker")
    assert host.backend_key.startswith(f"host-{host.pk}-")  # its own backend, by its address
    assert AuditEntry.objects.filter(action="host_added", host_name="lab-2").exists()


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("tcp://10.0.0.5:2375", "needs TLS"),
        ("qemu+ssh://root@lab/system", "starts with unix://, tcp://, ssh://"),
        ("http://lab:2375", "starts with"),
    ],
)
def test_a_bad_address_is_refused_with_the_reason(admin_client, endpoint, words):
    response = add(admin_client, endpoint=endpoint)
    assert response.status_code == 200 and words in response.content.decode()
    assert not Host.objects.filter(name="lab-2").exists()


def test_tls_files_the_site_cannot_read_are_refused(admin_client):
    response = add(admin_client, endpoint="tcp://10.0.0.5:2376", tls_ca="/nonexistent/ca.pem",
                   tls_cert="/nonexistent/cert.pem", tls_key="/nonexistent/key.pem")  # fmt: skip
    assert "The site cannot read /nonexistent/ca.pem" in response.content.decode()


def test_drain_and_remove(admin_client, hello_lab, alice):
    host = Host.objects.get(name="local-docker")
    Host.objects.filter(pk=host.pk).update(health=Health.UP)
    admin_client.post(f"/hosts/{host.pk}/drain/")
    host.refresh_from_db()
    assert host.draining
    Host.objects.filter(pk=host.pk).update(draining=False)
    services.start_session(alice, hello_lab)
    refused = admin_client.post(f"/hosts/{host.pk}/remove/", follow=True)
    assert "Drain it first" in refused.content.decode() and Host.objects.filter(pk=host.pk).exists()
    empty = Host.objects.get(name="local-libvirt")
    admin_client.post(f"/hosts/{empty.pk}/remove/")
    assert not Host.objects.filter(pk=empty.pk).exists()


def test_an_admin_stops_any_session_from_the_dashboard(admin_client, hello_lab, alice):
    session, _ = services.start_session(alice, hello_lab)
    response = admin_client.post(f"/hosts/sessions/{session.pk}/stop/", follow=True)
    assert "Stopping alice&#x27;s lab." in response.content.decode()
    session.refresh_from_db()
    assert (session.state, session.end_reason) == ("stopping", "admin")
    assert AuditEntry.objects.filter(action="session_stopped", session_id=session.pk).exists()
