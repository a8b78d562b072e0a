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

from apps.accounts.forms import ClassroomForm, CreateAccountForm, JoinClassForm, TokenForm
from apps.accounts.models import ApiToken, Classroom, Enrollment
from apps.accounts.roles import assign_role, is_admin, is_instructor
from apps.courses.models import StepProgress


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
    return render(request, "accounts/join.html", {"form": form})


@login_required
def profile(request):
    return render(
        request,
        "accounts/profile.html",
        {"classrooms": request.user.classrooms.all(), "teaching": request.user.teaching.all()},
    )


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
        return redirect("accounts:create")
    return render(request, "accounts/create.html", {"form": form})


@instructor_required
def classes(request):
    rows = Classroom.objects.all() if is_admin(request.user) else request.user.teaching.all()
    form = ClassroomForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        classroom = form.save()
        classroom.instructors.add(request.user)
        messages.success(request, _("Class %(name)s created.") % {"name": classroom.name})
        return redirect("accounts:class", classroom.pk)
    rows = rows.annotate(student_count=Count("students"))
    return render(request, "accounts/classes.html", {"classes": rows, "form": form})


@instructor_required
def class_detail(request, pk: int):
    classroom = _taught_by(request.user, pk)
    students = classroom.students.order_by("username")
    passed = dict(
        StepProgress.objects.filter(user__in=students).values_list("user").annotate(n=Count("pk"))
    )
    for student in students:
        student.passed_count = passed.get(student.pk, 0)
    return render(
        request, "accounts/class_detail.html", {"classroom": classroom, "students": students}
    )


@require_POST
@instructor_required
def renew_code(request, pk: int):
    classroom = _taught_by(request.user, pk)
    classroom.renew_code()
    messages.success(
        request, _("New enrollment code: %(code)s") % {"code": classroom.enrollment_code}
    )
    return redirect("accounts:class", pk)


@login_required
def tokens(request):
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        _row, token = ApiToken.issue(request.user, form.cleaned_data["name"])
        messages.success(
            request, _("Your new token (copy it now, it is not shown again): %(t)s") % {"t": token}
        )
        return redirect("accounts:tokens")
    return render(
        request, "accounts/tokens.html", {"form": form, "tokens": request.user.api_tokens.all()}
    )


@require_POST
@login_required
def revoke_token(request, pk: int):
    get_object_or_404(ApiToken, pk=pk, user=request.user).delete()
    messages.info(request, _("Token revoked."))
    return redirect("accounts:tokens")
