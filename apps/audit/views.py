"""The audit log's page, for administrators."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import render

from apps.accounts.roles import admin_required
from apps.audit.forms import AuditSearchForm
from apps.audit.models import AuditEntry
from apps.sessions.models import LabSession

PER_PAGE = 50


@admin_required
def audit_log(request):
    form = AuditSearchForm(request.GET or None)
    rows = AuditEntry.objects.all()
    if form.is_bound:
        # Invalid fields are shown with their error and left out of the search.
        form.is_valid()
        rows = form.filter(rows)
    page = Paginator(rows.order_by("-at", "-pk"), PER_PAGE).get_page(request.GET.get("page"))
    entries = list(page.object_list)
    # Only sessions still there have a recordings page to link to.
    ids = {e.session_id for e in entries if e.session_id}
    live = set(LabSession.objects.filter(pk__in=ids).values_list("pk", flat=True))
    for entry in entries:
        entry.has_recordings_page = entry.session_id in live
    return render(request, "audit/log.html", {"form": form, "page": page, "entries": entries})
