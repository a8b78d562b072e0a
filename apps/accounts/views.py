"""A user's own pages: their profile and their API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts.forms import TokenForm
from apps.accounts.models import ApiToken


@login_required
def profile(request):
    return render(
        request,
        "accounts/profile.html",
        {"classrooms": request.user.classrooms.all(), "teaching": request.user.teaching.all()},
    )


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
