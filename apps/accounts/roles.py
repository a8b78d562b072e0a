"""The three roles. A role is a Django group; admins are also staff so the Django admin works."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    STUDENT = "student", _("Student")
    INSTRUCTOR = "instructor", _("Instructor")
    ADMIN = "admin", _("Administrator")


def role_of(user: AbstractBaseUser | AnonymousUser) -> Role | None:
    if not user.is_authenticated:
        return None
    if user.is_superuser or _in_group(user, Role.ADMIN):
        return Role.ADMIN
    if _in_group(user, Role.INSTRUCTOR):
        return Role.INSTRUCTOR
    return Role.STUDENT


def is_instructor(user) -> bool:
    return role_of(user) in (Role.INSTRUCTOR, Role.ADMIN)


def is_admin(user) -> bool:
    return role_of(user) == Role.ADMIN


def admin_required(view):
    """A view for admins: anonymous visitors go to the login page, others get 403."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not is_admin(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def assign_role(user, role: Role) -> None:
    groups = {r: Group.objects.get_or_create(name=r.value)[0] for r in Role}
    user.groups.remove(*groups.values())
    user.groups.add(groups[role])
    # Administrators manage everything through the Django admin as well.
    user.is_staff = user.is_superuser = role == Role.ADMIN
    user.save(update_fields=["is_staff", "is_superuser"])


def _in_group(user, role: Role) -> bool:
    cache = getattr(user, "_role_groups", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._role_groups = cache
    return role.value in cache
