"""The editor's two plain forms: granting the editor role, importing an archive."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from apps.accounts.roles import is_instructor
from apps.courses.models import Module


class GrantForm(forms.Form):
    username = forms.CharField(label=_("Instructor's username"), max_length=150)

    def clean_username(self):
        name = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=name, is_active=True).first()
        if user is None:
            raise forms.ValidationError(_("No active account has this username."))
        if not is_instructor(user):
            raise forms.ValidationError(_("Only instructors can edit courses."))
        return user


class ImportForm(forms.Form):
    archive = forms.FileField(
        label=_("Zip archive"),
        help_text=_("A course folder (with course.yaml) or a lab folder (with lab.yaml), zipped."),
    )
    module = forms.ModelChoiceField(
        label=_("Module (for a lab)"),
        queryset=Module.objects.none(),
        required=False,
        help_text=_("Where an imported lab goes. Leave empty when importing a whole course."),
    )

    def __init__(self, *args, modules=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if modules is not None:
            self.fields["module"].queryset = modules
        self.fields["module"].label_from_instance = lambda m: (
            f"{m.course.display_title} · {m.number}. {m.display_title}"
        )
