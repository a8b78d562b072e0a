"""Access ends when it should: a logout or a deactivation closes open sockets at once."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save
from django.dispatch import receiver

from apps.sessions import events


@receiver(user_logged_out)
def close_sockets_of_login(sender, request, user, **kwargs) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        async_to_sync(events.access_revoked)(events.login_group(key), "logged out")


@receiver(post_save, sender=get_user_model())
def close_sockets_of_deactivated_user(sender, instance, **kwargs) -> None:
    if not instance.is_active:
        async_to_sync(events.access_revoked)(events.user_group(instance.pk), "deactivated")
