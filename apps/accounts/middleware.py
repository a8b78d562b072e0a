"""Personal API tokens: `Authorization: Token <token>` authenticates requests under /api/."""

from __future__ import annotations

from django.utils import timezone

from apps.accounts.models import ApiToken


class ApiTokenMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        header = request.headers.get("Authorization", "")
        if request.path.startswith("/api/") and header.startswith("Token "):
            row = (
                ApiToken.objects.select_related("user")
                .filter(digest=ApiToken.hash(header[6:].strip()), user__is_active=True)
                .first()
            )
            if row is not None:
                user = row.user
                request.user = user

                async def auser():
                    return user

                request.auser = auser
                # Tokens are not cookies: a forged cross-site request cannot carry one.
                request._dont_enforce_csrf_checks = True
                ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
            else:
                request.api_token_invalid = True
        return self.get_response(request)
