"""Helpers for tests that run the site in child processes, as a user would meet it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[1]
MANAGE = [sys.executable, str(ROOT / "manage.py")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(env: dict, *extra_commands: list[str]) -> None:
    """Migrate, load the content, run ``extra_commands``, and create the student alice."""
    for args in (["migrate", "-v0"], ["load_content"], *extra_commands):
        subprocess.run([*MANAGE, *args], env=env, check=True, capture_output=True, cwd=ROOT)
    script = (
        "from django.contrib.auth import get_user_model;"
        "from apps.accounts.roles import assign_role, Role;"
        f"u = get_user_model().objects.create_user('alice', password='{PASSWORD}');"
        "assign_role(u, Role.STUDENT)"
    )
    subprocess.run([*MANAGE, "shell", "-c", script], env=env, check=True, cwd=ROOT)


def wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{url} did not answer:\n{log.read_text()[-3000:]}")
