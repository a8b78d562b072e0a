from django.urls import path, re_path

from apps.api import docs, errors
from apps.api.api import api

app_name = "api"
ninja_urls, _app_name, _namespace = api.urls
urlpatterns = [
    path("", docs.docs, name="docs"),
    path("openapi.json", docs.schema, name="schema"),
    *ninja_urls,
    # Anything else under /api/ (ending in a slash: CommonMiddleware still adds a missing
    # one) is a JSON 404, whatever DEBUG says.
    re_path(r"^.*/$", errors.not_found),
]
