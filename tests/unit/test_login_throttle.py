"""Login attempts are throttled per username and address (django-axes)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def throttled(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3


def attempt(client: Client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_wrong_passwords_lock_the_account_for_that_address_with_a_clear_page(throttled, alice, bob):
    client = Client()
    for _ in range(2):
        assert attempt(client, "alice", "guess").status_code == 200
    assert attempt(client, "alice", "guess").status_code == 429  # the third locks it
    locked = attempt(client, "alice", PASSWORD)  # even the right password, now
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many attempts" in page or "尝试次数过多" in page
    # Another student behind the same classroom address is not locked out.
    assert attempt(client, "bob", PASSWORD).status_code == 302


def test_a_right_password_before_the_limit_resets_the_count(throttled, alice):
    client = Client()
    for _ in range(2):
        attempt(client, "alice", "guess")
    assert attempt(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        attempt(client, "alice", "guess")
    assert attempt(client, "alice", PASSWORD).status_code == 302
