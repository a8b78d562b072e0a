"""Personas and shared fixtures.

- alice: a student in Teacher Carol's class; the one who runs labs.
- bob: another student, in no class: must never see alice's sessions.
- carol: an instructor who teaches alice's class: may follow alice's sessions.
- dave: an instructor of another class: may not.
- erin: an administrator.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import translation

from apps.accounts.roles import Role, assign_role
from apps.teaching.models import Classroom, Enrollment

FIXTURE_CONTENT = Path(__file__).parent / "fixtures" / "content"
PASSWORD = "correct-horse-battery"
#: Sandboxes made by tests carry this site label, so cleanup never touches real ones.
#: The process id keeps two test runs on one machine (a developer's and a helper's) from
#: removing each other's sandboxes; tests/docker/conftest.py removes those of dead runs.
TEST_SITE = f"labsite-test-{os.getpid()}"
#: Sites running in child processes have a reconciler of their own, which removes every
#: sandbox of its site that its database does not know: each gets a label of its own.
LIVE_SITE = f"{TEST_SITE}-live"
PRODUCTION_SITE = f"{TEST_SITE}-prod"


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the site's language. A request made through the test client
    leaves its language active in the thread (as LocaleMiddleware does in a server), and
    messages the site writes from its executors are in the default language."""
    translation.activate(django_settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.LABSITE_SITE_NAME = TEST_SITE
    settings.CONTENT_DIR = FIXTURE_CONTENT
    settings.LABSITE_RECORDINGS_DIR = tmp_path / "recordings"
    # Real password hashing costs ~100 ms a login; the tests log in hundreds of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # django.test.Client.login passes no request, which django-axes needs; the login
    # throttle has its own test with it on.
    settings.AXES_ENABLED = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def _user(django_user_model, username: str, role: Role):
    user = django_user_model.objects.create_user(username=username, password=PASSWORD)
    assign_role(user, role)
    return user


@pytest.fixture
def alice(django_user_model):
    return _user(django_user_model, "alice", Role.STUDENT)


@pytest.fixture
def bob(django_user_model):
    return _user(django_user_model, "bob", Role.STUDENT)


@pytest.fixture
def carol(django_user_model, alice):
    carol = _user(django_user_model, "carol", Role.INSTRUCTOR)
    classroom = Classroom.objects.create(name="Carol's class")
    classroom.instructors.add(carol)
    Enrollment.objects.create(classroom=classroom, student=alice)
    return carol


@pytest.fixture
def dave(django_user_model):
    dave = _user(django_user_model, "dave", Role.INSTRUCTOR)
    Classroom.objects.create(name="Dave's class").instructors.add(dave)
    return dave


@pytest.fixture
def erin(django_user_model):
    return _user(django_user_model, "erin", Role.ADMIN)


@pytest.fixture
def course(db):
    call_command("load_content", dir=FIXTURE_CONTENT, stdout=open("/dev/null", "w"))
    from apps.courses.models import Course

    return Course.objects.get(slug="testcourse")


@pytest.fixture
def hello_lab(course):
    from apps.courses.models import Lab

    return Lab.objects.get(slug="hello")
