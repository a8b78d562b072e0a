"""Every page each role reaches from the site's menu, in Chromium, in Chinese and English, at
desktop and phone sizes: it loads without a script error, speaks the browser's language,
fits the width of the screen (nothing to scroll sideways), and keeps the header to one row
on a desktop and two on a phone. A screenshot of each is kept under the test's directory
(printed at the end) for people to look at."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import manage_shell
from tests.browser.test_watching import log_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser]

SETUP = f"""
from django.contrib.auth import get_user_model
from apps.accounts.roles import assign_role, Role
from apps.teaching.models import Classroom, Enrollment
User = get_user_model()
people = {{}}
for name, role in (("pat", Role.STUDENT), ("ines", Role.INSTRUCTOR), ("adam", Role.ADMIN)):
    user, _ = User.objects.get_or_create(username=name)
    user.set_password("{PASSWORD}"); user.save(); assign_role(user, role)
    people[name] = user
room, _ = Classroom.objects.get_or_create(name="Ines's class")
room.instructors.add(people["ines"])
Enrollment.objects.get_or_create(classroom=room, student=people["pat"])
print(room.pk)
"""

COURSE = "/courses/testcourse/"
STUDENT_PAGES = {
    "home": "/",
    "course": COURSE,
    "module": COURSE + "basics/",
    "lab": COURSE + "basics/labs/hello/",
    "running": "/labs/running/",
    "recordings": "/recordings/",
    "profile": "/accounts/me/",
    "tokens": "/accounts/tokens/",
}
INSTRUCTOR_PAGES = {
    **STUDENT_PAGES,
    "classes": "/classes/",
    "class": "/classes/{room}/",
    "new-account": "/classes/students/new/",
    "editor": "/authoring/",
}
ADMIN_PAGES = {
    **INSTRUCTOR_PAGES,
    "course-editor": "/authoring/courses/testcourse/",
    "servers": "/hosts/",
    "add-server": "/hosts/add/",
    "audit": "/audit/",
}
ROLES = {"pat": STUDENT_PAGES, "ines": INSTRUCTOR_PAGES, "adam": ADMIN_PAGES}
SIZES = {"desktop": (1366, 768), "phone": (390, 844)}
LOCALES = {"zh-CN": "zh-hans", "en-US": "en"}
SITE_NAME = {"zh-CN": "虚拟化实验室", "en-US": "Virtualization Lab"}
CJK = re.compile(r"[\u4e00-\u9fff]")

#: What the page looks like to the test: widths, the header's rows, the menu's words.
MEASURE_JS = """() => {
  const header = document.querySelector('.site-header');
  // Rows of the menu: the middles of its controls, grouped where they are 14 px apart.
  const middles = [...header.querySelectorAll('.site-nav a, .site-nav button, .site-nav select')]
    .filter((e) => e.offsetParent !== null && e.getBoundingClientRect().width > 2)
    .map((e) => { const r = e.getBoundingClientRect(); return (r.top + r.bottom) / 2; })
    .sort((a, b) => a - b);
  const rows = middles.filter((m, i) => i === 0 || m - middles[i - 1] > 14).length;
  const wide = [...document.querySelectorAll('body *')].filter((e) => {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.right <= window.innerWidth + 1) return false;
    // Inside something that scrolls sideways on purpose (tables, code, the menu row): fine.
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (['auto', 'scroll', 'hidden', 'clip'].includes(s.overflowX)) return false;
    }
    return true;
  }).map((e) => e.tagName.toLowerCase() + '.' + String(e.className).split(' ')[0]);
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    headerRows: rows,
    lang: document.documentElement.lang,
    menu: [...document.querySelectorAll('.site-links a')].map((a) => a.innerText.trim()),
    title: document.title,
    tooWide: wide.slice(0, 5),
  };
}"""


@pytest.fixture(scope="module")
def room(live_site, live_env) -> int:
    return int(manage_shell(live_env, SETUP).strip().splitlines()[-1])


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("username", ROLES)
def test_every_page_of_a_role_reads_right(
    browser, live_site, room, username, locale, size, tmp_path_factory
):
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    page.on("console", lambda m: m.type == "error" and errors.append(f"{page.url}: {m.text}"))
    shots = tmp_path_factory.mktemp(f"pages-{username}-{locale}-{size}")
    problems: list[str] = []
    try:
        log_in(page, live_site, username)
        for name, path in ROLES[username].items():
            response = page.goto(live_site + path.format(room=room))
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            seen = page.evaluate(MEASURE_JS)
            where = f"{name} ({path})"
            if response.status >= 400:
                problems.append(f"{where}: HTTP {response.status}")
            if seen["lang"] != LOCALES[locale]:
                problems.append(f"{where}: lang={seen['lang']}")
            if locale == "zh-CN" and not all(CJK.search(label) for label in seen["menu"]):
                problems.append(f"{where}: menu not in Chinese: {seen['menu']}")
            if locale == "en-US" and any(CJK.search(label) for label in seen["menu"]):
                problems.append(f"{where}: menu not in English: {seen['menu']}")
            if seen["scrollWidth"] > seen["innerWidth"] + 1:
                problems.append(
                    f"{where}: {seen['scrollWidth']} px wide in {seen['innerWidth']}:"
                    f" {seen['tooWide']}"
                )
            most_rows = 2 if size == "phone" else 1
            if seen["headerRows"] > most_rows:
                problems.append(f"{where}: the header takes {seen['headerRows']} rows")
            if seen["title"].count(SITE_NAME[locale]) != 1:
                problems.append(f"{where}: title {seen['title']!r}")
    finally:
        context.close()
    print(f"screenshots: {shots}")
    assert not problems, "\n".join(problems)
    assert not errors, "\n".join(errors)
