"""Logging out. Django only logs out on POST (a GET must not change state); a visitor who
follows a plain logout link gets a page with the button instead of a blank 405."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.shortcuts import render


class LogoutView(auth_views.LogoutView):
    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        return render(request, "registration/logout_confirm.html")
