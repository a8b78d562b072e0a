"""The API's two documents: the OpenAPI schema ninja generates (/api/openapi.json) and
its Swagger UI for people (/api/).

The site runs behind firewalls with no internet, so the docs page never loads anything
from a CDN: ninja serves its Swagger UI from the copy it ships in its static files when
the ``ninja`` app is installed (labsite/settings.py installs it for that reason)."""

from __future__ import annotations

from django.urls import reverse
from ninja import NinjaAPI
from ninja.openapi.docs import Swagger
from ninja.responses import Response

from apps.api.api import api


class LocalSwagger(Swagger):
    def get_openapi_url(self, api: NinjaAPI, path_params: dict) -> str:
        return reverse("api:schema")


DOCS = LocalSwagger()


def schema(request):
    return Response(api.get_openapi_schema(), json_dumps_params={"ensure_ascii": False})


def docs(request):
    return DOCS.render_page(request, api)
