"""Serve the site with Daphne and run the reconciler in the same process: the embedded
default, one command for a laptop or a classroom server. Production runs several
``daphne labsite.asgi:application`` processes and one ``manage.py reconcile`` instead."""

from __future__ import annotations

import logging

from django.core.management.base import BaseCommand

log = logging.getLogger("apps.sessions")


class Command(BaseCommand):
    help = "Serve HTTP and WebSockets with Daphne and run the sandbox reconciler alongside."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-reconciler", action="store_true")

    def handle(self, *args, host: str, port: int, no_reconciler: bool, **options):
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server, twisted_loop

        from apps.sessions.reconciler import Reconciler
        from labsite.asgi import application

        tasks = []

        def on_ready() -> None:
            self.stdout.write(f"Serving on http://{host}:{port}/", self.style.SUCCESS)
            if not no_reconciler:
                tasks.append(twisted_loop.create_task(Reconciler().run_forever()))

        server = Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            ready_callable=on_ready,
            websocket_max_message_size=256 * 1024,
            websocket_max_frame_size=256 * 1024,
            verbosity=1,
        )
        server.run()
