"""ASGI entry point: HTTP to Django, WebSockets to Channels consumers behind origin and
session checks. Django's ASGI app is built first so the app registry is ready before
any consumer (and its models) is imported."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labsite.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.terminals.routing import websocket_urlpatterns  # noqa: E402
from labsite.origin import allowed_hosts_origin_validator  # noqa: E402
from labsite.prompt_db import auth_stack  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": allowed_hosts_origin_validator(auth_stack(URLRouter(websocket_urlpatterns))),
    }
)
