from django.urls import path

from apps.authoring import actions, views

app_name = "authoring"
urlpatterns = [
    path("", views.index, name="index"),
    path("import/", views.import_archive, name="import"),
    path("preview/", actions.render_preview, name="preview"),
    path("courses/<slug:slug>/", views.course_page, name="course"),
    path("courses/<slug:slug>/new/", views.create_unit, name="create"),
    path("courses/<slug:slug>/save/", actions.save, name="save"),
    path("courses/<slug:slug>/state/", actions.state, name="state"),
    path("courses/<slug:slug>/revisions/", views.revisions, name="revisions"),
    path("courses/<slug:slug>/export/", views.export, name="export"),
    path("courses/<slug:slug>/editors/", views.grant, name="grant"),
    path("courses/<slug:slug>/editors/<int:pk>/remove/", views.revoke, name="revoke"),
    path("courses/<slug:slug>/<str:module_dir>/", views.module_page, name="module"),
    path(
        "courses/<slug:slug>/<str:module_dir>/labs/<slug:lab_slug>/",
        views.lab_page,
        name="lab",
    ),
    path("revisions/<int:pk>/restore/", views.restore, name="restore"),
    path("labs/<int:lab_id>/try/", actions.try_check, name="try"),
    path("labs/<int:lab_id>/validate/", actions.start_validation, name="validate"),
    path("validations/<uuid:pk>/", actions.validation_status, name="validation"),
]
