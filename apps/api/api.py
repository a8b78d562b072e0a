"""The NinjaAPI behind /api/: who may call it (auth.py), how failures look (errors.py),
the operations (views.py)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from ninja import NinjaAPI

from apps.api import errors, views
from apps.api.auth import CookieAuth, TokenAuth

api = NinjaAPI(
    title="Labsite API",
    version="1",
    description=gettext_lazy(
        "Start, follow and check lab sandboxes. Browser calls use the session cookie and the "
        "X-CSRFToken header; scripts send “Authorization: Token <token>” (create one under "
        "/accounts/tokens/)."
    ),
    urls_namespace="api",
    # docs.py serves both documents under the names the templates use (api:docs, api:schema).
    openapi_url=None,
    docs_url=None,
    auth=[TokenAuth(), CookieAuth()],
)
errors.install(api)
api.add_router("", views.router)
