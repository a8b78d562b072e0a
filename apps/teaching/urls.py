from django.urls import path

from apps.teaching import class_views, schedule, views, watch_views

app_name = "teaching"
urlpatterns = [
    path("join/", views.join_class, name="join"),
    path("students/new/", views.create_account, name="create"),
    path("", views.classes, name="classes"),
    path("<int:pk>/", class_views.class_detail, name="class"),
    path("<int:pk>/export.csv", class_views.export_csv, name="export_csv"),
    path("<int:pk>/students/import/", class_views.import_students, name="import_students"),
    path("<int:pk>/students/passwords/", class_views.download_passwords, name="passwords"),
    path(
        "<int:pk>/sessions/<uuid:session_id>/stop/", class_views.stop_session, name="stop_session"
    ),
    path("<int:pk>/renew/", views.renew_code, name="renew_code"),
    path("<int:pk>/quotas/", class_views.set_quotas, name="quotas"),
    path("<int:pk>/schedule/", schedule.schedule_lab, name="schedule"),
    path("<int:pk>/schedule/<int:schedule_id>/remove/", schedule.unschedule_lab, name="unschedule"),
    # The lead's: watching a student's terminal with consent (watch_views.py).
    path("<int:pk>/watch/<uuid:session_id>/", watch_views.watch, name="watch"),
]
