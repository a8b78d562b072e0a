"""Which language a page is in: the user's pick (the language cookie), else the browser's
(Accept-Language), else Chinese, the language the course is taught in."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import RequestFactory

from labsite.locale import choose_language

pytestmark = pytest.mark.django_db


def request(accept: str | None = None, cookie: str | None = None):
    headers = {"HTTP_ACCEPT_LANGUAGE": accept} if accept is not None else {}
    req = RequestFactory().get("/", **headers)
    if cookie is not None:
        req.COOKIES[settings.LANGUAGE_COOKIE_NAME] = cookie
    return req


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-hans"),
        ("de-DE,en;q=0.5", "en"),  # the first language the site has
        ("fr-FR,fr;q=0.9", "zh-hans"),  # neither: the course's language
        (None, "zh-hans"),
        ("", "zh-hans"),
    ],
)
def test_the_browser_language_decides_without_a_choice(accept, expected):
    assert choose_language(request(accept)) == expected


def test_the_users_choice_beats_the_browser():
    assert choose_language(request("en-US,en", cookie="zh-hans")) == "zh-hans"
    assert choose_language(request("zh-CN", cookie="en")) == "en"


def test_an_unknown_cookie_is_ignored():
    assert choose_language(request("en", cookie="klingon")) == "en"
    assert choose_language(request(None, cookie="klingon")) == "zh-hans"


def test_the_page_is_served_in_that_language(client, course):
    page = client.get(course.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en-US")
    assert page["Content-Language"] == "en"
    assert "Accept-Language" in page["Vary"]
    assert client.get(course.get_absolute_url())["Content-Language"] == "zh-hans"


@pytest.mark.parametrize("accept", ["en", "zh-CN"])
def test_the_switch_names_each_language_in_itself(client, course, accept):
    html = client.get(course.get_absolute_url(), HTTP_ACCEPT_LANGUAGE=accept).content.decode()
    assert ">English</option>" in html
    assert ">简体中文</option>" in html
    assert "英语" not in html


def test_a_websocket_gets_the_same_choice_as_its_page():
    from labsite.locale import scope_language

    english = {"headers": [(b"accept-language", b"en-US,en;q=0.9")], "cookies": {}}
    assert scope_language(english) == "en"
    assert scope_language({**english, "cookies": {settings.LANGUAGE_COOKIE_NAME: "zh-hans"}}) == (
        "zh-hans"
    )
    assert scope_language({"headers": [], "cookies": {}}) == "zh-hans"
