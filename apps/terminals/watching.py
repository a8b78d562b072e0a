"""Watching a student's terminal: the watcher's socket, and the student's side of it.

A watch never opens a terminal of its own. The student's terminal socket (the *source*)
forwards what it sends its browser to the tab's watchers over the channel layer, and an
allowed watcher's keys back to the shell; see docs/terminal-protocol.md. Who watches and
who may type lives in the database (apps/teaching/watching.py); sockets re-read it when
they hear ``watch.changed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from apps.sessions import events
from apps.sessions.models import LabSession, State
from apps.teaching import watching
from apps.terminals import protocol
from apps.terminals.inbound import control_message, fresh_user

log = logging.getLogger(__name__)

#: What a watcher who arrives late is shown first: the tab's most recent output.
SCREEN_BYTES = 128 * 1024


def watchers_group(session_id, tab: int) -> str:
    return f"watchers-{session_id}-{tab}"


async def watch_changed(session_id, *, joined: str = "", tab: int = 0) -> None:
    """Tell the session's sockets that its watches changed (``joined``: a new watcher's
    channel, which the tab's source greets with the screen)."""
    layer = get_channel_layer()
    await layer.group_send(
        events.group_name(session_id), {"type": "watch.changed", "joined": joined, "tab": tab}
    )


class TabBroadcast:
    """The student's terminal socket's side of watching one tab.

    Keeps the tab's recent output (so a watcher who arrives sees a screen), forwards output
    only while someone watches, and knows which watches the student lets type."""

    def __init__(self, session_id, tab: int, channel_name: str, cols: int, rows: int) -> None:
        self.session_id, self.tab, self.channel_name = session_id, tab, channel_name
        self.cols, self.rows = cols, rows
        self.recent = bytearray()
        self.watched = False
        self.typists: frozenset[int] = frozenset()
        self.layer = get_channel_layer()
        self.group = watchers_group(session_id, tab)

    async def start(self, replay: bytes) -> None:
        """The source is attached: greet watchers already waiting (a reconnect)."""
        self._remember(replay)
        await self.refresh({})
        if self.watched:
            await self.layer.group_send(self.group, self._screen())

    async def output(self, data: bytes) -> None:
        self._remember(data)
        if self.watched:
            await self.layer.group_send(
                self.group, {"type": "watch.output", "source": self.channel_name, "data": data}
            )

    async def resize(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        if self.watched:
            await self.layer.group_send(
                self.group,
                {"type": "watch.resize", "source": self.channel_name, "cols": cols, "rows": rows},
            )

    async def refresh(self, event: dict) -> None:
        """``watch.changed``: read who watches again; greet a watcher who just joined."""
        self.watched, self.typists = await database_sync_to_async(watching.tab_watchers)(
            self.session_id, self.tab
        )
        joined = event.get("joined")
        if joined and event.get("tab") == self.tab:
            await self.layer.send(joined, self._screen())

    def allows(self, watch_id) -> bool:
        return watch_id in self.typists

    async def stop(self) -> None:
        if self.watched:
            await self.layer.group_send(
                self.group, {"type": "watch.away", "source": self.channel_name}
            )

    def _remember(self, data: bytes) -> None:
        self.recent += data
        if len(self.recent) > 2 * SCREEN_BYTES:
            del self.recent[: len(self.recent) - SCREEN_BYTES]

    def _screen(self) -> dict:
        return {
            "type": "watch.screen",
            "source": self.channel_name,
            "cols": self.cols,
            "rows": self.rows,
            "data": bytes(self.recent[-SCREEN_BYTES:]),
        }


class WatchConsumer(AsyncWebsocketConsumer):
    """An instructor watching tab ``tab`` of a student's session, read-only until allowed."""

    watch_id: int | None = None
    source: str | None = None
    typing = False
    heartbeat: asyncio.Task | None = None

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        tab = int(self.scope["url_route"]["kwargs"]["tab"])
        if user is None or not user.is_authenticated:
            return await self._refuse(protocol.UNAUTHENTICATED, "not logged in", session_id)
        session = await database_sync_to_async(_load)(session_id)
        if session is None:
            return await self._refuse(protocol.NOT_FOUND, "no such session", session_id)
        if not await database_sync_to_async(watching.can_watch)(user, session):
            return await self._refuse(protocol.FORBIDDEN, "may not watch", session_id)
        if not 1 <= tab <= settings.LABSITE_MAX_TABS:
            return await self._refuse(protocol.POLICY, f"tab {tab} out of range", session_id)
        if session.state != State.RUNNING:
            return await self._refuse(protocol.NOT_RUNNING, "not running", session_id)
        self.session_id, self.tab = session.pk, tab
        self.bucket = protocol.input_bucket()
        for group in events.access_groups(user, self.scope.get("session"), session.pk):
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups.append(group)
        group = watchers_group(session.pk, tab)
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups.append(group)
        watch = await database_sync_to_async(watching.begin)(user, session, tab)
        self.watch_id = watch.pk
        log.info("watch %s: %s watches session %s tab %s (owner %s)", watch.pk, user.username,
                 session.pk, tab, session.owner.username)  # fmt: skip
        await self._send_state()
        await self.send(text_data=json.dumps({"type": protocol.WATCH_AWAY}))
        await watch_changed(session.pk, joined=self.channel_name, tab=tab)
        self.heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.watch_id is None:
            return
        size = len(bytes_data or b"") + len(text_data or "")
        if size > protocol.MAX_INPUT_FRAME or not self.bucket.take():
            await self._refuse(protocol.POLICY, "input over the limits", self.session_id)
            return
        if bytes_data is not None:
            # Dropped unless allowed; the student's socket checks again before writing.
            if self.typing and self.source:
                await self.channel_layer.send(
                    self.source, {"type": "watch.input", "watch": self.watch_id, "data": bytes_data}
                )
            return
        asks = (control_message(text_data) or {}).get("type") == protocol.ASK_TO_TYPE
        if asks and await database_sync_to_async(watching.ask_to_type)(self.watch_id):
            await watch_changed(self.session_id)

    # -- from the student's terminal socket ------------------------------------------------

    async def watch_screen(self, event) -> None:
        self.source = event["source"]
        screen = {"type": protocol.WATCH_SCREEN, "cols": event["cols"], "rows": event["rows"]}
        await self.send(text_data=json.dumps(screen))
        if event["data"]:
            await self.send(bytes_data=event["data"])

    async def watch_output(self, event) -> None:
        if event["source"] == self.source:
            await self.send(bytes_data=event["data"])

    async def watch_resize(self, event) -> None:
        if event["source"] == self.source:
            screen = {"type": protocol.WATCH_SCREEN, "cols": event["cols"], "rows": event["rows"]}
            await self.send(text_data=json.dumps({**screen, "resize": True}))

    async def watch_away(self, event) -> None:
        if event["source"] == self.source:
            self.source = None
            await self.send(text_data=json.dumps({"type": protocol.WATCH_AWAY}))

    async def watch_changed(self, event) -> None:
        await self._send_state()

    async def watch_input(self, event) -> None:
        pass  # for the student's socket

    # -- the session's own events ----------------------------------------------------------

    async def session_changed(self, event) -> None:
        state = await database_sync_to_async(_state)(self.session_id)
        if state != State.RUNNING:
            await self.close(code=protocol.SANDBOX_ENDED)

    async def session_progress(self, event) -> None:
        pass

    async def session_marker(self, event) -> None:
        pass

    async def access_revoked(self, event) -> None:
        await self._refuse(protocol.UNAUTHENTICATED, event.get("why", "access revoked"), "-")

    async def access_changed(self, event) -> None:
        user = self.scope.get("user")
        session = await database_sync_to_async(_load)(self.session_id)
        fresh = await database_sync_to_async(fresh_user)(user)
        if session is None or fresh is None:
            allowed = False
        else:
            allowed = await database_sync_to_async(watching.can_watch)(fresh, session)
        if not allowed:
            await self._refuse(protocol.FORBIDDEN, "access withdrawn", self.session_id)

    async def disconnect(self, code) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.heartbeat
        if self.watch_id is not None:
            await database_sync_to_async(watching.end)(self.watch_id)
            await watch_changed(self.session_id)
            log.info("watch %s ended", self.watch_id)

    async def _send_state(self) -> None:
        state = await database_sync_to_async(watching.state)(self.watch_id)
        if state is None:
            await self.close(code=1000)
            return
        self.typing = state["typing"]
        await self.send(text_data=json.dumps({"type": protocol.WATCH_STATE, **state}))

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(watching.HEARTBEAT_SECONDS)
            if not await database_sync_to_async(watching.heartbeat)(self.watch_id):
                await self.close(code=1000)
                return

    async def _refuse(self, code: int, reason: str, session_id) -> None:
        user = self.scope.get("user")
        log.warning(
            "watch refused (%s %s): user=%s session=%s",
            code, reason, getattr(user, "username", None) or "-", session_id,
        )  # fmt: skip
        await self.close(code=code)


def _load(session_id) -> LabSession | None:
    return LabSession.objects.select_related("owner").filter(pk=session_id).first()


def _state(session_id) -> str | None:
    return LabSession.objects.filter(pk=session_id).values_list("state", flat=True).first()
