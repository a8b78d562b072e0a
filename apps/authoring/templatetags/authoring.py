"""``{% editor_url obj as url %}``: the editor page of a course, module or lab, or "" when
the current user may not edit it (for an "Edit" link on the student's pages)."""

from __future__ import annotations

from pathlib import Path

from django import template
from django.urls import reverse

from apps.authoring.permissions import can_edit
from apps.courses.models import Course, Lab, Module

register = template.Library()


@register.simple_tag(takes_context=True)
def editor_url(context, obj: Course | Module | Lab) -> str:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    if isinstance(obj, Lab):
        course, args = obj.module.course, [Path(obj.module.source_dir).name, obj.slug]
        name = "authoring:lab"
    elif isinstance(obj, Module):
        course, args, name = obj.course, [Path(obj.source_dir).name], "authoring:module"
    else:
        course, args, name = obj, [], "authoring:course"
    if not can_edit(user, course):
        return ""
    return reverse(name, args=[course.slug, *args])
