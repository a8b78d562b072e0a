"""The instructor's pages: classes, their students' progress, accounts for students."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts.roles import assign_role, is_admin, is_instructor
from apps.teaching.forms import ClassroomForm, CreateAccountForm, JoinClassForm
from apps.teaching.models import Classroom, Enrollment


def instructor_required(view):
    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not is_instructor(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _taught_by(user, pk: int) -> Classroom:
    """The class if ``user`` teaches it (or is an admin); 403 otherwise."""
    classroom = get_object_or_404(Classroom, pk=pk)
    if not is_admin(user) and not classroom.instructors.filter(pk=user.pk).exists():
        raise PermissionDenied
    return classroom


@login_required
def join_class(request):
    form = JoinClassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        classroom = form.cleaned_data["code"]
        _row, created = Enrollment.objects.get_or_create(classroom=classroom, student=request.user)
        if created:
            messages.success(request, _("You joined %(name)s.") % {"name": classroom.name})
        else:
            messages.info(request, _("You are already in %(name)s.") % {"name": classroom.name})
        return redirect("accounts:profile")
    return render(request, "teaching/join.html", {"form": form})


@instructor_required
def create_account(request):
    form = CreateAccountForm(request.POST or None, creator=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            first, _sep, last = data["full_name"].partition(" ")
            user = get_user_model().objects.create_user(
                username=data["username"], password=data["password"], first_name=first,
                last_name=last,
            )  # fmt: skip
            assign_role(user, data["role"])
            if data["classroom"]:
                Enrollment.objects.create(classroom=data["classroom"], student=user)
        note = _("Account %(user)s created.") % {"user": user.username}
        if data.get("generated"):
            note += " " + _("Its password is: %(pw)s (shown once)") % {"pw": data["password"]}
        messages.success(request, note)
        return redirect("teaching:create")
    return render(request, "teaching/create.html", {"form": form})


@instructor_required
def classes(request):
    rows = Classroom.objects.all() if is_admin(request.user) else request.user.teaching.all()
    form = ClassroomForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        classroom = form.save()
        classroom.instructors.add(request.user)
        messages.success(request, _("Class %(name)s created.") % {"name": classroom.name})
        return redirect("teaching:class", classroom.pk)
    rows = rows.annotate(student_count=Count("students"))
    return render(request, "teaching/classes.html", {"classes": rows, "form": form})


@require_POST
@instructor_required
def renew_code(request, pk: int):
    classroom = _taught_by(request.user, pk)
    classroom.renew_code()
    messages.success(
        request, _("New enrollment code: %(code)s") % {"code": classroom.enrollment_code}
    )
    return redirect("teaching:class", pk)
