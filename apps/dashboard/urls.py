from django.urls import path

from apps.dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.dashboard, name="index"),
    path("live/", views.live, name="live"),
    path("add/", views.host_add, name="host_add"),
    path("pools/add/", views.pool_add, name="pool_add"),
    path("<int:pk>/", views.host_edit, name="host_edit"),
    path("<int:pk>/drain/", views.host_drain, name="host_drain"),
    path("<int:pk>/remove/", views.host_remove, name="host_remove"),
    path("<int:pk>/check/", views.host_check, name="host_check"),
    path("sessions/<uuid:session_id>/stop/", views.session_stop, name="session_stop"),
]
