"""Who is calling: a personal token (scripts) or the session cookie (the lab page).

Ninja tries the two in order and puts the first user found in ``request.auth``; when both
find nobody it raises ``AuthenticationError`` (401 ``not_logged_in``). Both are async, so
the user is read with ``await request.auser()`` and never through the lazy, synchronous
``request.user`` on the event loop."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja.security.base import AuthBase
from ninja.utils import check_csrf

from apps.sessions.errors import LabError

#: Shown when a cookie request lacks the CSRF token; also by ``views.csrf_failure``.
CSRF_MESSAGE = gettext_lazy("The request lacks a valid CSRF token; reload the page.")


class TokenAuth(AuthBase):
    """``Authorization: Token <token>``, checked by ``ApiTokenMiddleware``, which sets the
    token's user on the request or flags the token as invalid. Tokens need no CSRF token."""

    openapi_type = "apiKey"
    openapi_in = "header"
    openapi_name = "Authorization"
    openapi_description = "Token <token> (create one under /accounts/tokens/)"

    async def __call__(self, request):
        if getattr(request, "api_token_invalid", False):
            raise LabError("bad_token", _("This API token is not valid."), 401)
        if not request.headers.get("Authorization", "").startswith("Token "):
            return None
        return await request.auser()


class CookieAuth(AuthBase):
    """The session cookie of a logged-in browser. A POST must also carry the CSRF token
    (the ``X-CSRFToken`` header), checked as Django's ``CsrfViewMiddleware`` would: ninja
    marks its views csrf_exempt and leaves the check to the auth class."""

    openapi_type = "apiKey"
    openapi_in = "cookie"
    openapi_name = settings.SESSION_COOKIE_NAME
    #: Read by ninja's Swagger page, which then sends the CSRF token with its requests.
    csrf = True

    async def __call__(self, request):
        user = await request.auser()
        if not user.is_authenticated:
            return None
        if check_csrf(request) is not None:
            raise LabError("csrf", str(CSRF_MESSAGE), 403)
        return user
