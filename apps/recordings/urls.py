from django.urls import path

from apps.recordings import views

app_name = "recordings"
urlpatterns = [
    path("", views.recording_list, name="list"),
    path("session/<uuid:session_id>/", views.session_recordings, name="session"),
    path("<int:pk>/", views.play, name="play"),
    path("<int:pk>/cast", views.cast, name="cast"),
]
