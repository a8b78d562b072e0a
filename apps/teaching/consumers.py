"""The live class page's socket.

On connect it sends the whole grid (``{"type": "grid", "grid": ...}``, apps/teaching/grid.py);
when a student starts, stops or passes something (``student.activity`` on that student's
group) it sends that student's fresh row (``{"type": "rows", "rows": [...]}``), bursts
coalesced; every REFRESH_SECONDS the whole grid again, so time left, time spent and "last
active" move on and nothing missed stays missed. Students joining or leaving
(``class.changed``, apps/teaching/signals.py) re-send the grid. Logging out, deactivation or
no longer teaching the class close the socket (4001/4003), like the session consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model
from django.utils import translation

from apps.accounts.roles import is_admin
from apps.sessions import events
from apps.teaching.grid import class_grid
from apps.teaching.models import Classroom
from apps.terminals import protocol
from labsite.locale import scope_language

log = logging.getLogger(__name__)
#: Bursts of activity (a whole class pressing Start) become one push per this many seconds.
COALESCE_SECONDS = 0.5
#: Time left and "last active" move on by themselves; the whole grid is sent this often.
REFRESH_SECONDS = 15


def class_group(classroom_id: int) -> str:
    """The live pages of one class: told when its list of students changes."""
    return f"classroom-{classroom_id}"


class ClassLiveConsumer(AsyncWebsocketConsumer):
    flush: asyncio.Task | None = None
    ticker: asyncio.Task | None = None

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        self.pk = int(self.scope["url_route"]["kwargs"]["pk"])
        if user is None or not user.is_authenticated:
            await self.refuse(protocol.UNAUTHENTICATED, "not logged in")
            return
        students = await database_sync_to_async(_students_if_taught)(user, self.pk)
        if students is None:
            await self.refuse(protocol.FORBIDDEN, "does not teach the class")
            return
        self.language = _language(self.scope)
        self.followed: set[int] = set()
        self.pending: set[int] = set()
        self.last_flush = 0.0
        groups = [events.user_group(user.pk), class_group(self.pk)]
        key = getattr(self.scope.get("session"), "session_key", None)
        if key:
            groups.append(events.login_group(key))
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups.append(group)  # Channels leaves self.groups on disconnect
        await self._follow(students)
        await self.send_grid()
        self.ticker = asyncio.get_running_loop().create_task(self._tick())

    async def refuse(self, code: int, reason: str) -> None:
        user = self.scope.get("user")
        log.warning(
            "class view refused (%s %s): user=%s class=%s",
            code, reason, getattr(user, "username", None) or "-", self.pk,
        )  # fmt: skip
        await self.close(code=code)

    async def _follow(self, students: list[int]) -> None:
        """Listen to exactly these students' groups (joined and left students included)."""
        wanted = set(students)
        for student in wanted - self.followed:
            await self.channel_layer.group_add(events.student_group(student), self.channel_name)
        for student in self.followed - wanted:
            await self.channel_layer.group_discard(events.student_group(student), self.channel_name)
        self.followed = wanted

    # -- events ------------------------------------------------------------------------------

    async def student_activity(self, event) -> None:
        student = event.get("student")
        if student not in self.followed:
            return
        self.pending.add(student)
        if self.flush is None or self.flush.done():
            wait = max(0.0, self.last_flush + COALESCE_SECONDS - time.monotonic())
            self.flush = asyncio.get_running_loop().create_task(self._flush_after(wait))

    async def class_changed(self, event) -> None:
        """Students joined or left: follow the new list, and send the grid."""
        if await self._recheck():
            await self.send_grid()

    async def access_changed(self, event) -> None:
        """This instructor may have stopped teaching the class: ask again."""
        if await self._recheck():
            await self.send_grid()

    async def access_revoked(self, event) -> None:
        await self.refuse(protocol.UNAUTHENTICATED, event.get("why", "access revoked"))

    async def _recheck(self) -> bool:
        students = await database_sync_to_async(_students_if_taught)(self.scope["user"], self.pk)
        if students is None:
            await self.refuse(protocol.FORBIDDEN, "access withdrawn")
            return False
        await self._follow(students)
        return True

    # -- pushes ------------------------------------------------------------------------------

    async def _flush_after(self, wait: float) -> None:
        # Activity that arrives while waiting joins this push; activity that arrives
        # while the rows are being built schedules the next one (pending is emptied first).
        await asyncio.sleep(wait)
        students, self.pending = self.pending, set()
        self.last_flush = time.monotonic()
        try:
            grid = await database_sync_to_async(_grid)(self.pk, self.language, students)
        except Exception:  # a database hiccup: the next refresh sends the whole grid
            log.exception("class view update failed: class=%s", self.pk)
            return
        await self.send(
            text_data=json.dumps(
                {"type": "rows", "rows": grid["students"], "generated_at": grid["generated_at"]}
            )
        )

    async def send_grid(self) -> None:
        grid = await database_sync_to_async(_grid)(self.pk, self.language, None)
        await self.send(text_data=json.dumps({"type": "grid", "grid": grid}))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.send_grid()
            except Exception:  # a database hiccup: the next tick tries again
                log.exception("class view refresh failed: class=%s", self.pk)

    async def disconnect(self, code) -> None:
        for task in (self.flush, self.ticker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for student in getattr(self, "followed", ()):
            await self.channel_layer.group_discard(events.student_group(student), self.channel_name)


def _students_if_taught(user, pk: int) -> list[int] | None:
    """The class's students if ``user`` (as the database has them now) teaches it."""
    user = get_user_model().objects.filter(pk=user.pk, is_active=True).first()
    classroom = Classroom.objects.filter(pk=pk).first()
    if user is None or classroom is None:
        return None
    if not is_admin(user) and not classroom.instructors.filter(pk=user.pk).exists():
        return None
    return list(classroom.students.values_list("pk", flat=True))


def _grid(pk: int, language: str, student_ids) -> dict:
    with translation.override(language):
        return class_grid(Classroom.objects.get(pk=pk), student_ids=student_ids)


def _language(scope) -> str:
    """The page's language, as labsite.locale picks it: the cookie, else the browser's."""
    return scope_language(scope)
