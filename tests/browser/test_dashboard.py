"""The admin's lab-server dashboard in Chromium: hosts with their health and load, a
student's start appearing without a reload, charts drawn, the session stopped from there;
in English and Chinese, at desktop and phone sizes."""

from __future__ import annotations

import pytest

from tests.browser.conftest import LAB_ROOM_LOCALE, manage_shell
from tests.browser.test_watching import log_in, wait_text
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.docker]

SETUP = f"""
from django.contrib.auth import get_user_model
from apps.accounts.roles import assign_role, Role
User = get_user_model()
for name, role in (("ada", Role.ADMIN), ("stu", Role.STUDENT)):
    user, _ = User.objects.get_or_create(username=name)
    user.set_password("{PASSWORD}"); user.save(); assign_role(user, role)
"""


@pytest.fixture
def people(browser, live_site, live_env):
    manage_shell(live_env, SETUP)
    contexts = [
        browser.new_context(viewport={"width": 1280, "height": 900}, locale=LAB_ROOM_LOCALE)
        for _ in range(2)
    ]
    yield [c.new_page() for c in contexts]
    for c in contexts:
        c.close()


def test_the_dashboard_follows_a_start_and_stops_it(people, live_site, tmp_path):
    admin, student = people
    admin.context.add_cookies([{"name": "django_language", "value": "en", "url": live_site}])
    log_in(admin, live_site, "ada")
    admin.goto(f"{live_site}/hosts/")
    admin.wait_for_selector("article.dash-host[data-host=local-docker]")
    admin.wait_for_selector("[data-chart=load] canvas")  # uPlot drew the chart

    log_in(student, live_site, "stu")
    student.goto(f"{live_site}/courses/testcourse/basics/labs/hello/")
    student.click("[data-action=start]")
    wait_text(student, ".terminal-pane .xterm-rows", "root@lab", timeout=30_000)
    session_id = student.evaluate("window.LabSite.controller.session.id")

    # No reload: the live part brings the student's session in.
    row = f"article.dash-host[data-host=local-docker] tr[data-session='{session_id}']"
    admin.wait_for_selector(row, timeout=20_000)
    admin.screenshot(path=str(tmp_path / "dashboard-en.png"), full_page=True)
    admin.click(f"{row} button")
    admin.wait_for_selector(".messages .message", timeout=10_000)
    student.wait_for_function(
        "() => ['stopping', 'stopped'].includes(window.LabSite.controller.session.state)",
        timeout=30_000,
    )

    admin.set_viewport_size({"width": 390, "height": 844})
    admin.context.add_cookies([{"name": "django_language", "value": "zh-hans", "url": live_site}])
    admin.goto(f"{live_site}/hosts/")
    wait_text(admin, "h1", "实验服务器")
    admin.screenshot(path=str(tmp_path / "dashboard-zh-phone.png"), full_page=True)
    overflow = admin.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, "the dashboard is wider than a phone"
