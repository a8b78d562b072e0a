"""WebSocket consumers: a terminal bridge and a session-events feed.

Both accept first and then close with a 4000-range code when the user may not be here,
so the browser can tell the student why (docs/terminal-protocol.md). Bytes are bridged
as bytes; the sandbox is reached only through the service layer's backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation

from apps.recordings.recorder import Recorder
from apps.sessions import events, progress_messages, sandbox, services
from apps.sessions.errors import LabError
from apps.sessions.models import LabSession, State
from apps.sessions.serializers import session_json
from apps.teaching import watching
from apps.terminals import protocol
from apps.terminals.inbound import control_message, fresh_user
from apps.terminals.watching import TabBroadcast, watch_changed
from labsite.locale import scope_language
from labsite.prompt_db import PromptDispatch, prompt_db
from provisioning.base import TERMINAL_TAKEN

log = logging.getLogger(__name__)


class SessionConsumerMixin(PromptDispatch):
    """Find the session in the URL and check that the connected user may see it."""

    async def authorise(self) -> LabSession | None:
        user = self.scope.get("user")
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        if user is None or not user.is_authenticated:
            return await self.refuse(protocol.UNAUTHENTICATED, "not logged in", session_id)
        session = await prompt_db(_load)(session_id)
        if session is None:
            return await self.refuse(protocol.NOT_FOUND, "no such session", session_id)
        if not await prompt_db(services.can_view)(user, session):
            return await self.refuse(protocol.FORBIDDEN, "not the owner", session_id)
        # Logging out, deactivation or leaving a class reach open sockets through these;
        # Channels leaves the groups in ``self.groups`` on disconnect.
        for group in events.access_groups(user, self.scope.get("session"), session.pk):
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups.append(group)
        return session

    async def access_revoked(self, event) -> None:
        """The user logged out, or was deactivated: this socket ends now."""
        await self.refuse(protocol.UNAUTHENTICATED, event.get("why", "access revoked"), "-")

    async def access_changed(self, event) -> None:
        """Who may see what changed (a class lost a student): ask again."""
        user = await database_sync_to_async(fresh_user)(self.scope.get("user"))
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        session = await database_sync_to_async(_load)(session_id)
        allowed = user is not None and session is not None
        if allowed and not await database_sync_to_async(services.can_view)(user, session):
            allowed = False
        if not allowed:
            await self.refuse(protocol.FORBIDDEN, "access withdrawn", session_id)

    async def refuse(self, code: int, reason: str, session_id) -> None:
        user = self.scope.get("user")
        log.warning(
            "websocket refused (%s %s): user=%s session=%s path=%s",
            code, reason, getattr(user, "username", None) or "-", session_id, self.scope["path"],
        )  # fmt: skip
        await self.close(code=code)
        return None


class TerminalConsumer(SessionConsumerMixin, AsyncWebsocketConsumer):
    """The student's own terminal. Nobody else types here: instructors watch (and, with the
    student's consent, type) through the watching consumer, never by attaching."""

    terminal = None
    recorder: Recorder | None = None
    broadcast: TabBroadcast | None = None
    pump: asyncio.Task | None = None

    async def connect(self) -> None:
        await self.accept()
        session = await self.authorise()
        if session is None:
            return
        if session.owner_id != self.scope["user"].pk:
            await self.refuse(protocol.FORBIDDEN, "only the owner types here", session.pk)
            return
        tab = int(self.scope["url_route"]["kwargs"]["tab"])
        if not 1 <= tab <= settings.LABSITE_MAX_TABS:
            await self.refuse(protocol.POLICY, f"tab {tab} out of range", session.pk)
            return
        if session.state != State.RUNNING:
            await self.refuse(protocol.NOT_RUNNING, f"session is {session.state}", session.pk)
            return
        self.session = session
        self.unacked = 0
        self.resume = asyncio.Event()
        self.resume.set()
        self.bucket = protocol.input_bucket()
        self.last_touch = 0.0
        cols, rows = _size_from_query(self.scope.get("query_string", b""))
        try:
            self.terminal = await sandbox.open_terminal(session, tab=tab, cols=cols, rows=rows)
        except sandbox.SandboxEnded:
            await self.refuse(protocol.SANDBOX_ENDED, "the sandbox has ended", session.pk)
            return
        except LabError as exc:
            await self.refuse(protocol.ENGINE_ERROR, exc.code, session.pk)
            return
        log.info("terminal attached: session=%s tab=%s user=%s", session.pk, tab,
                 self.scope["user"].username)  # fmt: skip
        self.recorder = await Recorder.open(session.pk, tab, cols, rows)
        self.broadcast = TabBroadcast(session.pk, tab, self.channel_name, cols, rows)
        await self.broadcast.start(self.terminal.replay or b"")
        if self.terminal.replay:
            await self.send(bytes_data=self.terminal.replay)
        attached = {"type": protocol.STATUS, "state": protocol.STATUS_ATTACHED, "tab": tab}
        await self.send(text_data=json.dumps(attached))
        self.pump = asyncio.get_running_loop().create_task(self.pump_output())

    async def pump_output(self) -> None:
        """Sandbox → browser, pausing while the browser is more than HIGH bytes behind."""
        while True:
            await self.resume.wait()
            data = await self.terminal.read(protocol.READ_CHUNK)
            if not data:
                break
            self.unacked += len(data)
            if self.unacked > protocol.HIGH_WATERMARK:
                self.resume.clear()
            self.recorder.output(data)
            await self.send(bytes_data=data)
            await self.broadcast.output(data)
        if self.terminal.ended_reason == TERMINAL_TAKEN:
            # Another window opened this VM's one console: do not fight over it.
            await self.close(code=protocol.CONSOLE_TAKEN)
        elif await sandbox.ended(self.session, settle=1.0):
            # The sandbox died with the stream (PID 1 killed, poweroff): say so, at once.
            await self.close(code=protocol.SANDBOX_ENDED)
        else:
            # The shell exited (the student typed `exit`): a reconnect starts a fresh one.
            await self.close(code=1000)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        size = len(bytes_data or b"") + len(text_data or "")
        if size > protocol.MAX_INPUT_FRAME:
            await self.refuse(protocol.POLICY, f"frame of {size} bytes", self.session.pk)
            return
        message = control_message(text_data) if text_data is not None else None
        kind = None if bytes_data is not None else (message or {}).get("type", "")
        # Acknowledgements take no token (protocol.ACKS_COUNT_AGAINST_RATE); all else does.
        if protocol.counts_against_rate(kind) and not self.bucket.take():
            await self.refuse(protocol.POLICY, "input over the rate limit", self.session.pk)
            return
        if bytes_data is not None:
            await self.terminal.write(bytes_data)
            await self.touch()
        elif kind == protocol.ACK:
            self.acknowledge(message.get("bytes"))
        elif kind == protocol.RESIZE:
            cols, rows = _clamp(message.get("cols"), message.get("rows"))
            await self.terminal.resize(cols=cols, rows=rows)
            self.recorder.resize(cols, rows)
            await self.broadcast.resize(cols, rows)

    def acknowledge(self, acked) -> None:
        if isinstance(acked, int) and acked > 0:
            self.unacked = max(0, self.unacked - acked)
            if self.unacked < protocol.LOW_WATERMARK:
                self.resume.set()

    async def touch(self) -> None:
        now = time.monotonic()
        if now - self.last_touch > services.ACTIVITY_WRITE_INTERVAL.total_seconds():
            self.last_touch = now
            await database_sync_to_async(services.touch_activity)(self.session.pk)

    async def session_changed(self, event) -> None:
        session = await database_sync_to_async(_load)(self.session.pk)
        if session is None or session.state != State.RUNNING:
            state = session.state if session else "missing"
            await self.send(text_data=json.dumps({"type": protocol.STATUS, "state": state}))
            await self.close(code=protocol.SANDBOX_ENDED)

    async def session_progress(self, event) -> None:
        pass  # only the events socket reports start progress

    async def session_marker(self, event) -> None:
        if self.recorder is not None:
            self.recorder.marker(event["label"])

    async def watch_changed(self, event) -> None:
        if self.broadcast is not None:
            await self.broadcast.refresh(event)

    async def watch_input(self, event) -> None:
        """An instructor's keys: they reach the shell only while the student allows it."""
        if self.broadcast is not None and self.broadcast.allows(event["watch"]):
            await self.terminal.write(event["data"])

    async def disconnect(self, code) -> None:
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
        if self.broadcast is not None:
            with contextlib.suppress(Exception):  # the channel layer may be gone too
                await self.broadcast.stop()
        if self.terminal is not None:
            await self.terminal.close()
        if self.recorder is not None:
            await self.recorder.close()


class SessionEventsConsumer(SessionConsumerMixin, AsyncWebsocketConsumer):
    session: LabSession | None = None

    async def connect(self) -> None:
        await self.accept()
        self.session = await self.authorise()
        if self.session is None:
            return
        self.language = _language(self.scope)
        self.owner = self.session.owner_id == self.scope["user"].pk
        await self.session_changed({})
        if self.owner:
            await self.watch_changed({})

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """Only the owner's answers to watchers; anything else is ignored."""
        message = control_message(text_data) if text_data is not None else None
        if not self.owner or message is None or not isinstance(message.get("watch"), int):
            return
        kind, watch, user = message["type"], message["watch"], self.scope["user"]
        if kind in (protocol.WATCH_ALLOW, protocol.WATCH_REFUSE):
            changed = await database_sync_to_async(watching.answer)(
                user, self.session.pk, watch, allow=kind == protocol.WATCH_ALLOW
            )
        elif kind == protocol.WATCH_TAKE_BACK:
            changed = await database_sync_to_async(watching.take_back)(user, self.session.pk, watch)
        else:
            return
        if changed:
            await watch_changed(self.session.pk)

    async def watch_changed(self, event) -> None:
        if self.owner:
            rows = await database_sync_to_async(watching.watchers)(self.session.pk)
            await self.send(text_data=json.dumps({"type": protocol.WATCHERS, "watchers": rows}))

    async def watch_input(self, event) -> None:
        pass  # for the terminal socket

    async def session_changed(self, event) -> None:
        with translation.override(self.language):
            # The prompt pool: during a storm of starts or stops the sync thread is
            # backed up, and a socket whose student has gone must still wind up within
            # Daphne's ten seconds (it waits for the events queued before the close).
            data = await prompt_db(_session_data)(self.session.pk)
        await self.send(text_data=json.dumps({"type": protocol.SESSION, "session": data}))

    async def session_marker(self, event) -> None:
        pass  # recordings' business (the terminal consumer)

    async def session_progress(self, event) -> None:
        with translation.override(self.language):
            message = progress_messages.translate(event["message"])
        await self.send(
            text_data=json.dumps(
                {"type": protocol.PROGRESS, "percent": event["percent"], "message": message}
            )
        )


def _load(session_id) -> LabSession | None:
    return LabSession.objects.select_related("lab__module", "owner").filter(pk=session_id).first()


def _session_data(session_id) -> dict:
    return session_json(LabSession.objects.select_related("lab", "owner").get(pk=session_id))


def _size_from_query(query: bytes) -> tuple[int, int]:
    params = parse_qs(query.decode(errors="replace"))
    return _clamp(params.get("cols", [80])[0], params.get("rows", [24])[0])


def _clamp(cols, rows) -> tuple[int, int]:
    try:
        cols, rows = int(cols), int(rows)
    except (TypeError, ValueError):
        cols, rows = 80, 24
    cols = max(protocol.MIN_COLS, min(cols, protocol.MAX_COLS))
    return cols, max(protocol.MIN_ROWS, min(rows, protocol.MAX_ROWS))


def _language(scope) -> str:
    """The page's language, as labsite.locale picks it: the cookie, else the browser's."""
    return scope_language(scope)
