from django.urls import path

from apps.accounts import views

app_name = "accounts"
urlpatterns = [
    path("me/", views.profile, name="profile"),
    path("join/", views.join_class, name="join"),
    path("new/", views.create_account, name="create"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.revoke_token, name="revoke_token"),
    path("classes/", views.classes, name="classes"),
    path("classes/<int:pk>/", views.class_detail, name="class"),
    path("classes/<int:pk>/renew/", views.renew_code, name="renew_code"),
]
