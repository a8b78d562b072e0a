"""Run the reconciler loop on its own (production), or one pass with --once."""

from __future__ import annotations

import asyncio

from django.core.management.base import BaseCommand

from apps.sessions.engines import close_backends
from apps.sessions.reconciler import Reconciler


class Command(BaseCommand):
    help = "Make the engines match the database: start, stop, expire, adopt, clean up."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument("--backend", action="append", help="only this backend key")

    def handle(self, *args, once: bool, backend: list[str] | None, **options):
        asyncio.run(self._run(Reconciler(backend), once))

    async def _run(self, reconciler: Reconciler, once: bool) -> None:
        try:
            if once:
                await reconciler.run_once()
            else:
                await reconciler.run_forever()
        finally:
            await close_backends()
