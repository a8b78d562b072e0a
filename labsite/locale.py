"""The interface's language: the one the user picked with the switcher (the language
cookie), else the first of the browser's languages (Accept-Language) that the site has,
else Chinese, the language the course is taught in (settings.LANGUAGE_CODE).

Lab-room machines set to Chinese therefore all see Chinese; a visitor whose browser asks
for English sees English without having to find the switcher."""

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


def choose_language(request) -> str:
    """The language code for ``request`` (one of settings.LANGUAGES)."""
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if chosen in dict(settings.LANGUAGES):
        return chosen
    # Cookie (already refused above), then Accept-Language, then LANGUAGE_CODE.
    return translation.get_language_from_request(request, check_path=False)


class CookieLocaleMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware without i18n URL prefixes; its process_response adds
    ``Vary: Accept-Language`` and ``Content-Language``."""

    def process_request(self, request):
        translation.activate(choose_language(request))
        request.LANGUAGE_CODE = translation.get_language()
