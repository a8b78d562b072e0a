from django.urls import path

from apps.teaching import views, watch_views

app_name = "teaching"
urlpatterns = [
    path("join/", views.join_class, name="join"),
    path("students/new/", views.create_account, name="create"),
    path("", views.classes, name="classes"),
    path("<int:pk>/", views.class_detail, name="class"),
    path("<int:pk>/renew/", views.renew_code, name="renew_code"),
    # The lead's: watching a student's terminal with consent (watch_views.py).
    path("<int:pk>/watch/<uuid:session_id>/", watch_views.watch, name="watch"),
]
