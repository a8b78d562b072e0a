"""Database reads that must not queue behind the process's one sync thread.

Channels' ``database_sync_to_async`` runs every call on a single thread per process (the
"thread-sensitive" one). During a storm of starts that thread is busy with fifty
``start_session`` transactions and the runner's writes, and a WebSocket's login lookup
waited behind them for seconds, past Daphne's handshake timeout, so students were dropped
(bench/README.md, finding 1). The reads on the path to a socket's ``accept()`` and its
first checks (who is this, may they see this session) run here instead: a small pool of
their own, each call on a thread with its own connection, stale connections closed before
and after as Channels does."""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor

from channels.auth import AuthMiddleware, get_user
from channels.db import DatabaseSyncToAsync
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.db import OperationalError

#: Threads for those reads, each holding at most one database connection.
WORKERS = 8
_executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="db-prompt")
LOCKED_RETRIES = 250


def _on(executor: ThreadPoolExecutor):
    def wrap(func):
        return DatabaseSyncToAsync(_patient(func), thread_sensitive=False, executor=executor)

    return wrap


#: ``database_sync_to_async`` on the prompt pool: for short reads only.
prompt_db = _on(_executor)


#: Lease renewals get their own threads: a worker that is alive must not lose its claim on
#: a start because the sync thread is backed up (another process then takes the start over
#: and the two fight over one sandbox).
_lease_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="db-lease")


#: ``database_sync_to_async`` on the lease pool: for the runner's lease renewals.
lease_db = _on(_lease_executor)


def _patient(func):
    """SQLite's in-memory database shared between connections (the test suite's) locks a
    whole table while another connection writes to it, and says so at once instead of
    waiting; a read here waits its turn (a file database in WAL mode never gets there)."""

    @functools.wraps(func)
    def call(*args, **kwargs):
        for attempt in range(LOCKED_RETRIES + 1):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                if "locked" not in str(exc) or attempt == LOCKED_RETRIES:
                    raise
                time.sleep(0.02)
        raise AssertionError("unreachable")

    return call


class PromptAuthMiddleware(AuthMiddleware):
    async def resolve_scope(self, scope) -> None:
        scope["user"]._wrapped = await prompt_db(get_user.func)(scope)


class PromptDispatch:
    """For consumers: Channels closes stale database connections before *every* message,
    a hop through the one sync thread. A connect's own reads run on the prompt pool and a
    keystroke or an ack touches no database (a write through ``database_sync_to_async``
    closes stale connections itself), so those two skip it (bench/README.md)."""

    async def dispatch(self, message) -> None:
        if message["type"] == "websocket.connect":
            await self.websocket_connect(message)
        elif message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)


def auth_stack(inner):
    """Channels' AuthMiddlewareStack, with the user looked up on the prompt pool."""
    return CookieMiddleware(SessionMiddleware(PromptAuthMiddleware(inner)))
