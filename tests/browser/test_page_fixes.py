"""The page as a student and a visitor meet it (issue 8), in Chromium: the browser's
language, logout by link, the skip link, the phone's tabs, and, with one lab started, the
running-labs page, the full-window terminal and the stop message said once."""

from __future__ import annotations

import docker
import pytest

from tests.browser.conftest import LAB_ROOM_LOCALE
from tests.browser.test_student_flow import log_in
from tests.conftest import LIVE_SITE
from tests.docker.conftest import remove_test_sandboxes

pytestmark = [pytest.mark.browser]

LAB = "/courses/testcourse/basics/labs/hello/"


@pytest.fixture
def new_page(browser):
    """Pages in browsers of other languages and sizes than the default fixture's."""
    contexts = []

    def make(locale=LAB_ROOM_LOCALE, width=1280, height=800):
        context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def test_the_interface_speaks_the_browsers_language(new_page, live_site):
    english = new_page(locale="en-US")
    english.goto(f"{live_site}/accounts/login/")
    assert english.locator("html").get_attribute("lang") == "en"
    assert english.locator("h1").first.inner_text() == "Log in"
    for locale in (LAB_ROOM_LOCALE, "fr-FR"):  # Chinese, and neither: Chinese
        page = new_page(locale=locale)
        page.goto(f"{live_site}/accounts/login/")
        assert page.locator("html").get_attribute("lang") == "zh-hans"
    # The switch calls each language by its own name, and the choice beats the browser.
    options = english.locator(".lang-switch option").all_inner_texts()
    assert sorted(options) == sorted(["English", "简体中文"])
    english.select_option(".lang-switch select", "zh-hans")
    english.wait_for_function("document.documentElement.lang === 'zh-hans'")
    assert english.locator(".lang-switch option").all_inner_texts() == options


def test_logout_by_link_gives_a_page_with_the_button(page, live_site):
    log_in(page, live_site)
    response = page.goto(f"{live_site}/accounts/logout/")
    assert response.status == 200
    button = page.locator("main form button[type=submit]")
    assert button.is_visible()
    button.click()
    page.wait_for_load_state()
    assert page.locator(".site-header a[href^='/accounts/login/']").is_visible()


def test_the_skip_link_is_the_first_tab_stop_and_leads_to_start(page, live_site):
    log_in(page, live_site)
    page.goto(live_site + LAB)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").is_visible()  # shown while focused
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.action") == "start"
    # A Check button that cannot be used yet says why.
    check = page.locator("[data-action=check]").first
    assert check.is_disabled() and check.get_attribute("title")


def test_a_phone_shows_instructions_and_terminal_as_two_tabs(new_page, live_site):
    phone = new_page(width=390, height=844)
    log_in(phone, live_site)
    phone.goto(live_site + LAB)
    tabs = phone.locator(".lab-view-tabs [role=tab]")
    assert tabs.count() == 2 and phone.locator(".lab-view-tabs").is_visible()
    assert phone.locator(".lab-steps").is_visible()
    assert not phone.locator(".terminal-area").is_visible()
    assert phone.locator("[data-action=start]").is_visible()  # the toolbar stays
    tabs.nth(1).click()
    assert phone.locator(".terminal-area").is_visible()
    assert not phone.locator(".lab-steps").is_visible()
    assert tabs.nth(1).get_attribute("aria-selected") == "true"
    tabs.nth(0).click()
    assert phone.locator(".lab-steps").is_visible()
    wide = new_page()
    log_in(wide, live_site)
    wide.goto(live_site + LAB)
    assert not wide.locator(".lab-view-tabs").is_visible()
    assert wide.locator(".lab-steps").is_visible() and wide.locator(".terminal-area").is_visible()


@pytest.mark.docker
def test_a_started_lab_is_listed_fills_the_window_and_says_its_end_once(page, live_site):
    client = docker.from_env()
    try:
        log_in(page, live_site)
        page.goto(live_site + LAB)
        page.click("[data-action=start]")
        page.wait_for_function(
            "document.querySelector('.xterm-rows') && "
            "document.querySelector('.xterm-rows').innerText.includes('root@lab')",
            timeout=30_000,
        )
        # One way of following the session: its events socket; no poll while it is open.
        polls = []
        page.on(
            "request",
            lambda r: (
                polls.append(r.url) if "/api/sessions/" in r.url and r.method == "GET" else None
            ),
        )
        page.wait_for_timeout(6_000)  # longer than the fallback poll's 5 s
        assert polls == []
        # Listed on the running-labs page, with a link back to the lab.
        listing = page.context.new_page()
        listing.goto(f"{live_site}/labs/running/")
        assert listing.locator(".running-lab").count() == 1
        assert listing.locator(f".running-lab a[href='{LAB}']").count() >= 1
        assert listing.locator(".running-lab [data-action=stop-running]").is_visible()
        listing.close()

        # Full window: the terminal pane grows, and re-fits (more columns).
        cols = "window.LabSite.controller._active().conn.term.cols"
        before = page.evaluate(cols)
        toggle = page.locator("[data-action=fullscreen]")
        toggle.click()
        box = page.locator("#lab-app").bounding_box()
        assert box["width"] == 1280 and box["height"] == 800
        assert toggle.get_attribute("aria-pressed") == "true"
        page.wait_for_function(f"{cols} > {before}", timeout=5_000)
        page.click(".xterm-screen")
        page.keyboard.press("Escape")  # the shell's (vim's) Esc: stays
        assert page.locator("#lab-app.is-fullscreen").count() == 1
        toggle.focus()
        page.keyboard.press("Escape")
        assert page.locator("#lab-app.is-fullscreen").count() == 0
        page.wait_for_function(f"{cols} === {before}", timeout=5_000)

        # Stop: why it ended is said once on the page, not again in the terminal.
        page.on("dialog", lambda dialog: dialog.accept())
        page.click("[data-action=stop]")
        page.wait_for_selector("#lab-app[data-state=stopped]", timeout=20_000)
        message = page.locator("[data-role=message]").inner_text()
        assert message
        assert page.locator("#lab-app").inner_text().count(message) == 1
        assert page.locator(".terminal-banner:visible").count() == 0  # not again in there
        assert page.locator("[data-action=fullscreen]").is_hidden()
    finally:
        remove_test_sandboxes(client, LIVE_SITE)
        client.close()


def test_the_running_labs_limit_message_links_the_running_labs_page(page, live_site):
    """The server's refusal is faked (no three real starts): what the page makes of it."""
    log_in(page, live_site)
    page.goto(live_site + LAB)
    refusal = {"error": {"code": "too_many_sessions", "message": "已有 2 个实验在运行。"}}
    page.route(
        "**/api/labs/*/sessions/",
        lambda route: route.fulfill(status=409, json=refusal),
    )
    page.click("[data-action=start]")
    link = page.locator("[data-role=message] a.lab-message-link")
    link.wait_for()
    assert link.get_attribute("href") == "/labs/running/"
    link.click()
    page.wait_for_url(f"{live_site}/labs/running/")
