from django.urls import path

from apps.sessions import views

app_name = "sessions"
urlpatterns = [
    path(
        "courses/<slug:course_slug>/<slug:module_slug>/labs/<slug:lab_slug>/",
        views.lab,
        name="lab",
    ),
]
