"""What every socket of this app asks of its other end: is the user still allowed in, and
is a text frame a control message. Shared by the terminal, events and watch consumers."""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model


def control_message(text: str | None) -> dict | None:
    """A JSON control message with a string ``type``; anything else is ignored."""
    try:
        message = json.loads(text or "")
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return None
    return message


def fresh_user(user):
    """The user as the database has them now, or None if they may no longer log in."""
    if user is None or not user.is_authenticated:
        return None
    return get_user_model().objects.filter(pk=user.pk, is_active=True).first()
