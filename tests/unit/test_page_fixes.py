"""The pages as a student and a visitor meet them (issue 8): titles, logout by link, the
running-labs page, the skip link, the lab page's order, and what a session is called
while it waits. Sessions are rows made here, never started."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.sessions import runner
from apps.sessions.models import EndReason, LabSession, State
from apps.sessions.serializers import session_json

pytestmark = pytest.mark.django_db

SITE = "虚拟化实验室"  # "Virtualization Lab"


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()


@pytest.fixture
def placed(alice, hello_lab):
    """Alice's start, placed on a host and not yet claimed by the runner."""
    return LabSession.objects.create(owner=alice, lab=hello_lab, backend="docker")


def test_each_title_names_the_site_once(client, course, hello_lab):
    pages = ["/", course.get_absolute_url(), hello_lab.get_absolute_url(), "/no-such-page/"]
    for url in pages:
        html = client.get(url, follow=True).content.decode()
        assert title(html).count(SITE) == 1, (url, title(html))
    assert title(client.get(hello_lab.get_absolute_url()).content.decode()) == (
        f"{hello_lab.display_title} · {SITE}"
    )


def test_logout_by_link_shows_a_page_with_the_button(alice):
    response = as_user(alice).get("/accounts/logout/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'action="/accounts/logout/"' in html and 'type="submit"' in html


def test_the_skip_link_is_the_first_thing_in_the_page(client, hello_lab):
    html = client.get(hello_lab.get_absolute_url()).content.decode()
    body = html[html.index("<body") :]
    first_link = re.search(r"<a [^>]*>", body).group(0)
    assert 'class="skip-link"' in first_link and 'href="#lab-app"' in first_link
    # The lab's controls come before the steps and their Run buttons.
    assert body.index('data-action="start"') < body.index('class="lab-steps"')


def test_a_placed_start_is_not_called_queued(placed):
    data = session_json(placed)
    assert placed.state == State.REQUESTED
    assert data["queued"] is False and data["queue_position"] is None
    assert data["state_label"] == str(State.STARTING.label)


def test_a_waiting_start_is_queued_with_its_place(alice, hello_lab):
    waiting = LabSession.objects.create(owner=alice, lab=hello_lab, backend="")
    data = session_json(waiting)
    assert data["queued"] is True and data["queue_position"] == 1
    assert data["state_label"] == str(State.REQUESTED.label)


def test_the_running_labs_page_lists_mine_with_a_link_and_stop(alice, bob, placed, hello_lab):
    LabSession.objects.create(owner=bob, lab=hello_lab, backend="docker", state=State.RUNNING)
    html = as_user(alice).get("/labs/running/").content.decode()
    assert html.count('class="card running-lab"') == 1  # not bob's
    assert f'href="{hello_lab.get_absolute_url()}"' in html
    assert f'action="/labs/running/{placed.pk}/stop/"' in html


def test_the_running_labs_page_needs_a_login(client):
    assert client.get("/labs/running/").status_code == 302


def test_stop_from_the_running_labs_page(alice, bob, placed, monkeypatch):
    kicked = []
    monkeypatch.setattr(runner, "kick", lambda pk, state: kicked.append((pk, state)))
    assert as_user(bob).post(f"/labs/running/{placed.pk}/stop/").status_code == 302
    placed.refresh_from_db()
    assert placed.state == State.REQUESTED  # not bob's to stop
    response = as_user(alice).post(f"/labs/running/{placed.pk}/stop/")
    assert response.status_code == 302 and response["Location"] == "/labs/running/"
    placed.refresh_from_db()
    assert placed.end_reason == EndReason.USER
    assert kicked == [(placed.pk, State.STOPPING)]


def test_the_lab_page_links_the_running_labs_page(alice, hello_lab):
    html = as_user(alice).get(hello_lab.get_absolute_url()).content.decode()
    assert 'data-running-url="/labs/running/"' in html
    assert 'id="reason-not-running"' in html and 'id="reason-no-extensions"' in html
