"""Forms of the instructor's pages and of joining a class."""

from __future__ import annotations

import secrets

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.roles import Role, is_admin
from apps.teaching.models import Classroom


class JoinClassForm(forms.Form):
    code = forms.CharField(label=_("Enrollment code"), max_length=16)

    def clean_code(self) -> Classroom:
        code = self.cleaned_data["code"].strip().upper().replace(" ", "")
        classroom = Classroom.objects.filter(enrollment_code=code).first()
        if classroom is None:
            raise forms.ValidationError(_("No class has this code. Check it with your instructor."))
        if not classroom.code_is_valid(timezone.now()):
            raise forms.ValidationError(
                _("This code has expired. Ask your instructor for a new one.")
            )
        return classroom


class CreateAccountForm(forms.Form):
    username = forms.CharField(
        label=_("Username"), max_length=150, validators=[UnicodeUsernameValidator()]
    )
    full_name = forms.CharField(label=_("Full name"), max_length=150, required=False)
    password = forms.CharField(
        label=_("Password"),
        required=False,
        widget=forms.PasswordInput(render_value=True),
        help_text=_("Leave empty to generate one."),
    )
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.STUDENT)
    classroom = forms.ModelChoiceField(
        label=_("Class"), queryset=Classroom.objects.none(), required=False
    )

    def __init__(self, *args, creator, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.creator = creator
        if is_admin(creator):
            self.fields["classroom"].queryset = Classroom.objects.all()
        else:
            self.fields["classroom"].queryset = creator.teaching.all()
            self.fields["role"].choices = [(Role.STUDENT.value, Role.STUDENT.label)]

    def clean_username(self) -> str:
        name = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=name).exists():
            raise forms.ValidationError(_("This username is taken."))
        return name

    def clean_role(self) -> Role:
        role = Role(self.cleaned_data["role"])
        if role != Role.STUDENT and not is_admin(self.creator):
            raise forms.ValidationError(_("Only administrators can create staff accounts."))
        return role

    def clean(self):
        data = super().clean()
        if not data.get("password"):
            data["password"] = secrets.token_urlsafe(9)
            data["generated"] = True
        else:
            validate_password(data["password"])
        return data


class ClassroomForm(forms.ModelForm):
    class Meta:
        model = Classroom
        fields = ["name", "course", "code_expires_at"]
        widgets = {"code_expires_at": forms.DateTimeInput(attrs={"type": "datetime-local"})}
