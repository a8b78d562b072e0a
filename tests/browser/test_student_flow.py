"""A student in Chromium: log in, open a module, start a lab, type, check a step."""

from __future__ import annotations

import docker
import pytest

from tests.conftest import LIVE_SITE, PASSWORD
from tests.docker.conftest import remove_test_sandboxes

pytestmark = [pytest.mark.browser, pytest.mark.docker]


@pytest.fixture(autouse=True)
def no_leftover_sandboxes():
    client = docker.from_env()
    yield
    remove_test_sandboxes(client, LIVE_SITE)
    client.close()


def log_in(page, live_site):
    page.goto(f"{live_site}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{live_site}/**")


def test_student_logs_in_and_opens_a_module(page, live_site):
    log_in(page, live_site)
    page.goto(live_site + "/")
    assert page.locator("h1").first.inner_text() == "测试课程"  # Chinese by default
    page.click("text=基础")
    page.wait_for_selector("article.lesson")
    assert "容器共享主机内核" in page.inner_text("article.lesson")
    assert page.locator("article.lesson img").first.evaluate("img => img.naturalWidth") > 0
    assert page.locator(".lab-card").count() == 1


def test_student_starts_a_lab_types_and_passes_a_check(page, live_site):
    log_in(page, live_site)
    page.goto(f"{live_site}/courses/testcourse/basics/labs/hello/")
    page.click("[data-action=start]")
    page.wait_for_selector(".xterm-screen", timeout=20_000)
    page.wait_for_function(
        "document.querySelector('.xterm-rows') && "
        "document.querySelector('.xterm-rows').innerText.includes('root@lab')",
        timeout=20_000,
    )
    page.click(".xterm-screen")
    page.keyboard.type(
        "mkdir -p /root/answers && echo h''i > /root/answers/hello && echo done-$((40+2))\n"
    )
    page.wait_for_function(
        "document.querySelector('.xterm-rows').innerText.includes('done-42')", timeout=10_000
    )
    page.click("[data-action=check][data-step='1']")
    page.wait_for_selector("section.step[data-step='1'][data-passed='true']", timeout=15_000)
    assert "很好" in page.inner_text("section.step[data-step='1'] [data-role=check-result]")


def test_a_sandbox_that_dies_is_explained_on_the_page(page, live_site, tmp_path):
    log_in(page, live_site)
    page.goto(f"{live_site}/courses/testcourse/basics/labs/hello/")
    page.click("[data-action=start]")
    page.wait_for_function(
        "document.querySelector('.xterm-rows') && "
        "document.querySelector('.xterm-rows').innerText.includes('root@lab')",
        timeout=20_000,
    )
    client = docker.from_env()
    try:
        (box,) = client.containers.list(filters={"label": f"labsite.site={LIVE_SITE}"})
        box.kill()  # PID 1 dies: the student did nothing on the page
    finally:
        client.close()
    page.wait_for_function("document.body.innerText.includes('自行停止')", timeout=20_000)
    page.screenshot(path=str(tmp_path / "sandbox-ended.png"), full_page=True)
    # The page offers a fresh start instead of reconnecting to a dead terminal.
    assert page.locator("[data-action=start]").is_visible()
