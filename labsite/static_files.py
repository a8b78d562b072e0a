"""Static files from WhiteNoise, in an async middleware chain.

WhiteNoise's middleware is sync-only, and one sync-only middleware makes Django run every
view through a single thread per process (see apps/accounts/middleware.py). This wrapper
asks WhiteNoise only for paths under STATIC_URL, in a worker thread, and passes every
other request straight on.
"""

from __future__ import annotations

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        self.whitenoise = WhiteNoiseMiddleware(lambda request: None)
        self.prefix = settings.STATIC_URL
        markcoroutinefunction(self)

    async def __call__(self, request):
        if request.path_info.startswith(self.prefix):
            response = await sync_to_async(self.whitenoise, thread_sensitive=False)(request)
            if response is not None:
                return response
        return await self.get_response(request)
