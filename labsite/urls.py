from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from apps.accounts.logout import LogoutView
from labsite import errors

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/", include("apps.accounts.urls")),
    path("classes/", include("apps.teaching.urls")),
    path("authoring/", include("apps.authoring.urls")),
    path("recordings/", include("apps.recordings.urls")),
    path("audit/", include("apps.audit.urls")),
    path("hosts/", include("apps.dashboard.urls")),
    path("metrics", include("apps.metrics.urls")),
    path("api/", include("apps.api.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="jsi18n"),
    path("", include("apps.sessions.urls")),
    path("", include("apps.courses.urls")),
]

handler403 = errors.forbidden
handler404 = errors.not_found
handler500 = errors.server_error
