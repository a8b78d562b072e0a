"""The interface's language: the one the user picked with the switcher (the language
cookie), else the first of the browser's languages (Accept-Language) that the site has,
else Chinese, the language the course is taught in (settings.LANGUAGE_CODE).

Lab-room machines set to Chinese therefore all see Chinese; a visitor whose browser asks
for English sees English without having to find the switcher."""

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.utils.translation import trans_real


def choose_language(request) -> str:
    """The language code for ``request`` (one of settings.LANGUAGES)."""
    return language_for(
        request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME),
        request.headers.get("Accept-Language", ""),
    )


def scope_language(scope) -> str:
    """The same choice for a WebSocket (a Channels scope, after its CookieMiddleware)."""
    headers = dict(scope.get("headers") or [])
    accept = headers.get(b"accept-language", b"").decode("latin-1")
    return language_for(scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME), accept)


def language_for(cookie: str | None, accept_language: str) -> str:
    if cookie in dict(settings.LANGUAGES):
        return cookie
    for code, _quality in trans_real.parse_accept_lang_header(accept_language):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


class CookieLocaleMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware without i18n URL prefixes; its process_response adds
    ``Vary: Accept-Language`` and ``Content-Language``."""

    def process_request(self, request):
        translation.activate(choose_language(request))
        request.LANGUAGE_CODE = translation.get_language()
