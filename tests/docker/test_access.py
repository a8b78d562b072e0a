"""Access ends when it should: an open terminal closes at once on logout or deactivation.
(An instructor's watch ending when the student leaves the class: tests/docker/test_watching.py.)"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from apps.terminals import protocol
from tests.docker.conftest import Screen, close_code, connect_terminal, login_cookie, start_lab

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


async def attached(session, user, cookie=None) -> Screen:
    screen = Screen(await connect_terminal(session, user, cookie=cookie))
    await screen.until(b"# ")
    return screen


@database_sync_to_async
def log_out(cookie: str) -> None:
    client = Client()
    client.cookies["sessionid"] = cookie
    client.post("/accounts/logout/")


async def test_logging_out_closes_that_logins_terminal_only(alice, hello_lab):
    session = await start_lab(alice, hello_lab)
    laptop, phone = await login_cookie(alice), await login_cookie(alice)
    on_laptop = await attached(session, alice, cookie=laptop)
    on_phone = await attached(session, alice, cookie=phone)
    await log_out(laptop)
    assert await close_code(on_laptop.communicator) == protocol.UNAUTHENTICATED
    await on_phone.type("echo phone-$((40+2))\r")  # the other login is untouched
    await on_phone.until(b"phone-42")
    await on_phone.communicator.disconnect()


async def test_a_deactivated_user_is_cut_off_at_once(alice, hello_lab):
    session = await start_lab(alice, hello_lab)
    screen = await attached(session, alice)
    alice.is_active = False
    await database_sync_to_async(alice.save)()
    assert await close_code(screen.communicator) == protocol.UNAUTHENTICATED
    # ...and cannot come back: a new socket is refused.
    again = await connect_terminal(session, alice)
    assert await close_code(again) == protocol.UNAUTHENTICATED
