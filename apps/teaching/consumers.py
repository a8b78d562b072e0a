"""The live class page's socket: the class's grid, pushed again whenever one of its
students starts, stops or passes something (``student.activity`` on each student's group)."""

from __future__ import annotations

import asyncio
import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.accounts.roles import is_admin
from apps.sessions import events
from apps.teaching.grid import class_grid
from apps.teaching.models import Classroom
from apps.terminals import protocol

log = logging.getLogger(__name__)
#: Bursts of activity (a whole class pressing Start) become one push per this many seconds.
COALESCE_SECONDS = 0.5
#: Time left and "last active" move on by themselves; the page is refreshed this often anyway.
REFRESH_SECONDS = 15


def class_group(classroom_id: int) -> str:
    return f"classroom-{classroom_id}"


class ClassLiveConsumer(AsyncWebsocketConsumer):
    pending: asyncio.Task | None = None
    ticker: asyncio.Task | None = None

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        self.pk = int(self.scope["url_route"]["kwargs"]["pk"])
        if user is None or not user.is_authenticated:
            await self.close(code=protocol.UNAUTHENTICATED)
            return
        students = await database_sync_to_async(_students_if_taught)(user, self.pk)
        if students is None:
            log.warning("class view refused: user=%s class=%s", user.username, self.pk)
            await self.close(code=protocol.FORBIDDEN)
            return
        self.language = self.scope.get("cookies", {}).get("django_language")
        await self._follow(students)
        for group in (events.user_group(user.pk), class_group(self.pk)):
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups.append(group)
        await self.push()
        self.ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _follow(self, students: list[int]) -> None:
        for student in students:
            group = events.student_group(student)
            if group not in self.groups:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups.append(group)

    async def student_activity(self, event) -> None:
        if self.pending is None or self.pending.done():
            self.pending = asyncio.get_running_loop().create_task(self._push_soon())

    async def class_changed(self, event) -> None:
        """Students joined or left: follow the new ones, and push."""
        students = await database_sync_to_async(_students_if_taught)(self.scope["user"], self.pk)
        if students is None:
            await self.close(code=protocol.FORBIDDEN)
            return
        await self._follow(students)
        await self.student_activity(event)

    async def access_revoked(self, event) -> None:
        await self.close(code=protocol.UNAUTHENTICATED)

    async def access_changed(self, event) -> None:
        await self.class_changed(event)

    async def _push_soon(self) -> None:
        await asyncio.sleep(COALESCE_SECONDS)
        await self.push()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            await self.push()

    async def push(self) -> None:
        grid = await database_sync_to_async(_grid)(self.pk, self.language)
        await self.send(text_data=json.dumps({"type": "grid", "grid": grid}))

    async def disconnect(self, code) -> None:
        for task in (self.pending, self.ticker):
            if task is not None:
                task.cancel()


def _students_if_taught(user, pk: int) -> list[int] | None:
    classroom = Classroom.objects.filter(pk=pk).first()
    if classroom is None or not user.is_active:
        return None
    if not is_admin(user) and not classroom.instructors.filter(pk=user.pk).exists():
        return None
    return list(classroom.students.values_list("pk", flat=True))


def _grid(pk: int, language: str | None) -> dict:
    from django.utils import translation

    with translation.override(language or "zh-hans"):
        return class_grid(Classroom.objects.get(pk=pk))
