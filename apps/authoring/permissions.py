"""Who may edit what: admins everything; instructors the courses they own or were granted.
Students never, whatever rows say (a student given a role by mistake still cannot edit)."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from apps.accounts.roles import is_admin, is_instructor
from apps.authoring.models import CourseRole, CourseRoleKind
from apps.courses.models import Course


def can_edit(user, course: Course) -> bool:
    if is_admin(user):
        return True
    return is_instructor(user) and CourseRole.objects.filter(course=course, user=user).exists()


def can_grant(user, course: Course) -> bool:
    """Owners (and admins) may give other instructors the editor role."""
    if is_admin(user):
        return True
    return (
        is_instructor(user)
        and CourseRole.objects.filter(course=course, user=user, role=CourseRoleKind.OWNER).exists()
    )


def editable_courses(user) -> QuerySet[Course]:
    if is_admin(user):
        return Course.objects.all()
    if not is_instructor(user):
        return Course.objects.none()
    return Course.objects.filter(roles__user=user).distinct()


def require_edit(user, course: Course) -> None:
    if not can_edit(user, course):
        raise PermissionDenied


def instructor_required(view):
    """Anonymous users go to the login page; students get 403."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not is_instructor(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper
