from django.urls import path

from apps.api import openapi
from apps.api import views as api

app_name = "api"
urlpatterns = [
    path("", openapi.docs, name="docs"),
    path("openapi.json", openapi.schema, name="schema"),
    path("labs/", api.labs, name="labs"),
    path("labs/<int:lab_id>/sessions/", api.start, name="start"),
    path("sessions/<uuid:session_id>/", api.session_detail, name="session"),
    path("sessions/<uuid:session_id>/extend/", api.extend, name="extend"),
    path("sessions/<uuid:session_id>/stop/", api.stop, name="stop"),
    path("sessions/<uuid:session_id>/reset/", api.reset, name="reset"),
    path("sessions/<uuid:session_id>/steps/<int:number>/check/", api.check, name="check"),
]
