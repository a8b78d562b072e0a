"""Personal API tokens: `Authorization: Token <token>` authenticates requests under /api/.

Async-capable, so that the site's middleware chain stays async end to end: one sync-only
middleware makes Django run the whole view through a single thread per process, and a
slow request (a check that runs for its full timeout) would then hold up every other one.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.utils import timezone

from apps.accounts.models import ApiToken


class ApiTokenMiddleware:
    async_capable = True
    sync_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        if token := _token_of(request):
            _authenticate(request, _lookup(token))
        return self.get_response(request)

    async def _acall(self, request):
        if token := _token_of(request):
            _authenticate(request, await sync_to_async(_lookup)(token))
        return await self.get_response(request)


def _token_of(request) -> str | None:
    header = request.headers.get("Authorization", "")
    if request.path.startswith("/api/") and header.startswith("Token "):
        return header[6:].strip()
    return None


def _lookup(token: str):
    row = (
        ApiToken.objects.select_related("user")
        .filter(digest=ApiToken.hash(token), user__is_active=True)
        .first()
    )
    if row is not None:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
        return row.user
    return None


def _authenticate(request, user) -> None:
    if user is None:
        request.api_token_invalid = True
        return
    request.user = user

    async def auser():
        return user

    request.auser = auser
    # Tokens are not cookies: a forged cross-site request cannot carry one.
    request._dont_enforce_csrf_checks = True
