from django.urls import path

from apps.courses import views

app_name = "courses"
urlpatterns = [
    path("", views.home, name="home"),
    path("courses/<slug:course_slug>/", views.course, name="course"),
    path("courses/<slug:course_slug>/<slug:module_slug>/", views.module, name="module"),
    path(
        "assets/<slug:course_slug>/<str:module_dir>/diagrams/<str:name>",
        views.asset,
        name="asset",
    ),
]
