"""Fault injection on real engines.

A test module here may get a *private* Docker Engine of its own (``private_dockerd``, a
``tests.engines.PrivateDockerd``), which it may stop, restart or kill at will.

The private engine gets a busybox image (``docker import`` of Debian's busybox-static with
its applet links) tagged as the lab image, ``labsite/base:latest``: ``busybox sleep infinity``
runs as the lab's main command, and checks run with the platform's own busybox anyway.
It has no tmux, so a test that needs a real shell uses the machine's engine instead
(measured: ``docker save labsite/base | docker load`` into the private engine takes ~5 s,
the busybox import 0.1 s).
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.test import AsyncClient

from apps.sessions import runner
from apps.sessions.engines import close_backends
from apps.sessions.models import LabSession
from apps.sessions.reconciler import Reconciler
from tests.conftest import TEST_SITE
from tests.docker.conftest import docker_client  # noqa: F401  (a fixture for the tests here)
from tests.engines import PrivateDockerd, remove_netns_of_dead_runs

pytestmark = pytest.mark.docker

LAB_IMAGE = ("labsite/base", "latest")
#: Sites run in child processes by these tests; their reconcilers remove every sandbox of
#: their label that their database does not know, so the label is theirs alone.
FAULTS_SITE = f"{TEST_SITE}-faults"


@pytest.fixture(scope="module")
def private_dockerd():
    """A Docker Engine for this test module alone, with the busybox lab image loaded."""
    remove_netns_of_dead_runs()
    engine = PrivateDockerd()
    try:
        engine.start()
        engine.load_busybox_image(*LAB_IMAGE)
        yield engine
    finally:
        engine.destroy()


@pytest.fixture
async def site_on_private_engine(private_dockerd, settings, request):
    """The in-process site's ``docker`` backend pointed at the private engine."""
    docker_settings = settings.LABSITE_BACKENDS["docker"]
    settings.LABSITE_BACKENDS = {
        **settings.LABSITE_BACKENDS,
        "docker": {
            **docker_settings,
            "OPTIONS": {**docker_settings["OPTIONS"], "base_url": private_dockerd.url},
        },
    }
    await close_backends()
    yield private_dockerd
    await runner.wait_idle()
    await close_backends()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"--- private dockerd log:\n{private_dockerd.log_tail()}")
    if not private_dockerd.running:  # a test that failed while the engine was down
        private_dockerd.start()
    private_dockerd.remove_all_containers()


@pytest.fixture
async def idle_backends():
    """Wait for the runner's tasks, then drop the backends (they hold connections)."""
    yield
    await runner.wait_idle()
    await close_backends()


async def client_for(user) -> AsyncClient:
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return client


async def reload(session) -> LabSession:
    return await database_sync_to_async(LabSession.objects.get)(pk=session.pk)


async def reconcile() -> None:
    """One reconciler pass, and whatever it handed out, to the end."""
    await Reconciler(["docker"]).run_once()
    await runner.wait_idle()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
