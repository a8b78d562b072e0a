"""The audit page's search form (GET)."""

from __future__ import annotations

import re

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from apps.audit.models import Action

_HEX = re.compile(r"[0-9a-f]*")


class AuditSearchForm(forms.Form):
    user = forms.CharField(label=_("User"), required=False, max_length=150)
    session = forms.CharField(
        label=_("Session id"), required=False, max_length=36,
        help_text=_("The start of the id is enough."),
    )  # fmt: skip
    host = forms.CharField(label=_("Host"), required=False, max_length=100)
    action = forms.ChoiceField(
        label=_("Action"), required=False, choices=[("", _("any")), *Action.choices]
    )
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean_session(self) -> str:
        """The prefix in the canonical, hyphenated form: it matches on every database
        (PostgreSQL compares the hyphenated text, the others the bare hex digits)."""
        digits = self.cleaned_data["session"].strip().lower().replace("-", "")
        if not _HEX.fullmatch(digits) or len(digits) > 32:
            raise forms.ValidationError(_("A session id has only the digits 0-9 and a-f."))
        cuts = [(0, 8), (8, 12), (12, 16), (16, 20), (20, 32)]
        return "-".join(digits[a:b] for a, b in cuts if digits[a:b])

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end of the range is before its start."))
        return data

    def filter(self, rows: QuerySet) -> QuerySet:
        """``rows`` narrowed by what the form holds (valid fields only)."""
        data = self.cleaned_data if self.is_bound and hasattr(self, "cleaned_data") else {}
        if value := (data.get("user") or "").strip():
            rows = rows.filter(actor_name__icontains=value)
        if value := data.get("session"):
            rows = rows.filter(session_id__startswith=value)
        if value := (data.get("host") or "").strip():
            rows = rows.filter(host_name__icontains=value)
        if value := data.get("action"):
            rows = rows.filter(action=value)
        if value := data.get("since"):
            rows = rows.filter(at__date__gte=value)
        if value := data.get("until"):
            rows = rows.filter(at__date__lte=value)
        return rows
