"""An instructor watches a student's terminal in Chromium, and types only with consent."""

from __future__ import annotations

import docker
import pytest

from tests.browser.conftest import LAB_ROOM_LOCALE, manage_shell
from tests.conftest import LIVE_SITE, PASSWORD
from tests.docker.conftest import remove_test_sandboxes

pytestmark = [pytest.mark.browser, pytest.mark.docker]

SETUP = f"""
from django.contrib.auth import get_user_model
from apps.accounts.roles import assign_role, Role
from apps.teaching.models import Classroom, Enrollment
User = get_user_model()
ivan, _ = User.objects.get_or_create(username="ivan", defaults={{"first_name": "Ivan"}})
ivan.set_password("{PASSWORD}"); ivan.save(); assign_role(ivan, Role.INSTRUCTOR)
room, _ = Classroom.objects.get_or_create(name="Ivan's class")
room.instructors.add(ivan)
# One student per test: a session another test left running must not show on this one.
for name in ("sara", "tina"):
    student, _ = User.objects.get_or_create(username=name)
    student.set_password("{PASSWORD}"); student.save(); assign_role(student, Role.STUDENT)
    Enrollment.objects.get_or_create(classroom=room, student=student)
print(room.pk)
"""


@pytest.fixture(autouse=True)
def no_leftover_sandboxes():
    client = docker.from_env()
    yield
    remove_test_sandboxes(client, LIVE_SITE)
    client.close()


@pytest.fixture
def classroom(live_site, live_env) -> int:
    return int(manage_shell(live_env, SETUP).strip().splitlines()[-1])


@pytest.fixture
def two_people(browser):
    contexts = [
        browser.new_context(viewport={"width": 1280, "height": 800}, locale=LAB_ROOM_LOCALE)
        for _ in range(2)
    ]
    yield [c.new_page() for c in contexts]
    for c in contexts:
        c.close()


def log_in(page, live_site, username: str) -> None:
    page.goto(f"{live_site}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{live_site}/**")


def wait_text(page, selector: str, text: str, timeout: int = 15_000) -> None:
    page.wait_for_function(
        "([sel, text]) => { const el = document.querySelector(sel);"
        " return !!el && el.innerText.includes(text); }",
        arg=[selector, text],
        timeout=timeout,
    )


def test_watching_with_consent(two_people, live_site, classroom, tmp_path):
    student, teacher = two_people
    log_in(student, live_site, "sara")
    student.goto(f"{live_site}/courses/testcourse/basics/labs/hello/")
    student.click("[data-action=start]")
    wait_text(student, ".terminal-pane .xterm-rows", "root@lab", timeout=30_000)
    student.click(".terminal-pane .xterm-screen")
    student.keyboard.type("echo from-student-$((20+1))\n")
    wait_text(student, ".terminal-pane .xterm-rows", "from-student-21")
    session_id = student.evaluate("window.LabSite.controller.session.id")

    log_in(teacher, live_site, "ivan")
    teacher.goto(f"{live_site}/classes/{classroom}/watch/{session_id}/")
    wait_text(teacher, ".watch-screen .xterm-rows", "from-student-21")
    wait_text(student, "[data-role=watchers]", "Ivan")  # the student is told, at once
    teacher.screenshot(path=str(tmp_path / "teacher-watching.png"))
    student.screenshot(path=str(tmp_path / "student-watched.png"))

    # Keys typed before consent never reach the shell.
    teacher.click(".watch-screen .xterm-screen")
    teacher.keyboard.type("echo uninvited-$((1+1))\n")
    teacher.wait_for_timeout(800)
    assert "uninvited-2" not in student.inner_text(".terminal-pane .xterm-rows")

    teacher.click("[data-role=ask]")
    student.click("[data-watch-answer=watch-allow]")
    teacher.wait_for_selector("#watch[data-typing=yes]", timeout=10_000)
    teacher.click(".watch-screen .xterm-screen")
    teacher.keyboard.type("echo by-teacher-$((6*7))\n")
    wait_text(student, ".terminal-pane .xterm-rows", "by-teacher-42")
    student.screenshot(path=str(tmp_path / "student-allowed.png"))

    student.click("[data-watch-answer=watch-take-back]")
    teacher.wait_for_selector("#watch[data-typing=no]", timeout=10_000)
    assert student.locator("[data-role=watchers]").is_visible()  # still watched, read-only

    teacher.close()
    student.wait_for_selector("[data-role=watchers]", state="hidden", timeout=70_000)


def test_the_class_page_follows_a_student_live(two_people, live_site, classroom, tmp_path):
    student, teacher = two_people
    log_in(teacher, live_site, "ivan")
    teacher.goto(f"{live_site}/classes/{classroom}/")
    teacher.wait_for_selector("tr[data-student=tina]")
    assert teacher.locator("tr[data-student=tina] .live-session").count() == 0

    log_in(student, live_site, "tina")
    student.goto(f"{live_site}/courses/testcourse/basics/labs/hello/")
    student.click("[data-action=start]")
    # No reload: the class page hears the start.
    teacher.wait_for_selector(
        "tr[data-student=tina] .live-session[data-state=running]", timeout=30_000
    )
    wait_text(student, ".terminal-pane .xterm-rows", "root@lab", timeout=30_000)
    student.click(".terminal-pane .xterm-screen")
    student.keyboard.type("mkdir -p /root/answers && echo hi > /root/answers/hello\n")
    student.wait_for_timeout(300)
    student.click("[data-action=check][data-step='1']")
    student.wait_for_selector("section.step[data-step='1'][data-passed='true']", timeout=15_000)
    teacher.wait_for_selector(
        "tr[data-student=tina] .dot[data-step='1'][data-passed=true]", timeout=10_000
    )
    teacher.screenshot(path=str(tmp_path / "class-live.png"), full_page=True)
    teacher.set_viewport_size({"width": 390, "height": 844})
    teacher.screenshot(path=str(tmp_path / "class-live-phone.png"), full_page=True)

    teacher.click("tr[data-student=tina] [data-action=watch]")
    wait_text(teacher, ".watch-screen .xterm-rows", "root@lab")
