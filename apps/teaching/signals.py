"""Leaving a class ends what it allowed: an instructor following a student's terminal
loses it when the student leaves the class or the instructor stops teaching it."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from apps.sessions import events
from apps.sessions.models import LIVE_STATES, LabSession
from apps.teaching.models import Classroom, Enrollment


@receiver(post_delete, sender=Enrollment)
def recheck_watchers_of_student(sender, instance, **kwargs) -> None:
    live = LabSession.objects.filter(owner_id=instance.student_id, state__in=LIVE_STATES)
    for session_id in live.values_list("pk", flat=True):
        async_to_sync(events.access_changed)(events.group_name(session_id))


@receiver(m2m_changed, sender=Classroom.instructors.through)
def recheck_removed_instructors(sender, instance, action, pk_set, **kwargs) -> None:
    if action not in ("post_remove", "post_clear"):
        return
    if isinstance(instance, Classroom):
        users = pk_set or []
        if action == "post_clear":
            users = []  # pk_set is unknown after a clear; recheck the students' sessions instead
            for enrollment in instance.enrollment_set.all():
                recheck_watchers_of_student(Enrollment, enrollment)
    else:
        users = [instance.pk]
    for user_id in users:
        async_to_sync(events.access_changed)(events.user_group(user_id))


@receiver(post_save, sender=Enrollment)
@receiver(post_delete, sender=Enrollment)
def refresh_class_views(sender, instance, **kwargs) -> None:
    """A student joined or left: the class's live pages follow the new list."""
    from apps.teaching.consumers import class_group

    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(
            class_group(instance.classroom_id), {"type": "class.changed"}
        )
