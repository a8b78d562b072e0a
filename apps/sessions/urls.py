from django.urls import path

from apps.sessions import views

app_name = "sessions"
urlpatterns = [
    path("labs/running/", views.running, name="running"),
    path("labs/running/<uuid:session_id>/stop/", views.stop_running, name="stop_running"),
    path(
        "courses/<slug:course_slug>/<slug:module_slug>/labs/<slug:lab_slug>/",
        views.lab,
        name="lab",
    ),
]
