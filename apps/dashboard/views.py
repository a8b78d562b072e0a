"""The admin's pages for the lab servers. Every view is for admins only (403 otherwise)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts.roles import admin_required, is_admin
from apps.audit.log import arecord, record
from apps.dashboard import figures
from apps.dashboard.forms import HostForm, PoolForm
from apps.hosts.models import Host
from apps.sessions import runner, services
from apps.sessions.engines import backend_for, register_host
from apps.sessions.models import ACTIVE_STATES, EndReason, LabSession, State


def _context() -> dict:
    return {
        "rows": figures.host_rows(),
        "queue": figures.queue(),
        "totals": figures.totals(),
        "series": figures.series(),
    }


@admin_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/index.html", _context() | {"pool_form": PoolForm()})


@admin_required
def live(request: HttpRequest) -> HttpResponse:
    """The page's changing part, fetched every few seconds by dashboard.js."""
    return render(request, "dashboard/_live.html", _context())


@admin_required
def host_add(request: HttpRequest) -> HttpResponse:
    form = HostForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        host = form.save()
        record(request.user, "host_added", host=host, target=host.name,
               endpoint=host.endpoint, pool=host.pool.name)  # fmt: skip
        messages.success(
            request, _("Host %(name)s added; it is checked within seconds.") % {"name": host.name}
        )
        return redirect("dashboard:index")
    return render(request, "dashboard/host_form.html", {"form": form, "host": None})


@admin_required
def host_edit(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host, pk=pk)
    form = HostForm(request.POST or None, instance=host)
    if request.method == "POST" and form.is_valid():
        changed = form.changed_data
        host = form.save()
        register_host(host)
        record(request.user, "host_changed", host=host, target=host.name, fields=changed)
        messages.success(request, _("Host %(name)s saved.") % {"name": host.name})
        return redirect("dashboard:index")
    return render(request, "dashboard/host_form.html", {"form": form, "host": host})


@admin_required
@require_POST
def host_drain(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host, pk=pk)
    host.draining = not host.draining
    host.save(update_fields=["draining"])
    record(request.user, "host_drained" if host.draining else "host_changed", host=host,
           target=host.name, draining=host.draining)  # fmt: skip
    if host.draining:
        messages.success(
            request,
            _("%(name)s is draining: it takes no new sessions and empties as its sessions end.")
            % {"name": host.name},
        )
    else:
        messages.success(request, _("%(name)s takes new sessions again.") % {"name": host.name})
    return redirect("dashboard:index")


@admin_required
@require_POST
def host_remove(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host, pk=pk)
    active = LabSession.objects.filter(host=host, state__in=ACTIVE_STATES).count()
    if active:
        messages.error(
            request,
            _("%(name)s still runs %(n)d sessions. Drain it first and remove it once it is empty.")
            % {"name": host.name, "n": active},
        )
        return redirect("dashboard:index")
    record(request.user, "host_removed", host=host, target=host.name)
    name = host.name
    host.delete()
    messages.success(request, _("Host %(name)s removed.") % {"name": name})
    return redirect("dashboard:index")


@admin_required
@require_POST
def pool_add(request: HttpRequest) -> HttpResponse:
    form = PoolForm(request.POST)
    if form.is_valid():
        pool = form.save()
        record(request.user, "host_changed", target=f"pool {pool.name}", pool=pool.name)
        messages.success(request, _("Pool %(name)s added.") % {"name": pool.name})
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("dashboard:index")


async def host_check(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask the host now (the reconciler does it every pass): its facts or its error."""
    if not await _is_admin(request):
        raise PermissionDenied
    if request.method != "POST":
        return HttpResponse(status=405)
    host = await database_sync_to_async(get_object_or_404)(Host, pk=pk)
    key = register_host(host)
    try:
        backend = await backend_for(key)
        facts = await backend.host_facts()
    except Exception as exc:  # the engine's own words, for the admin
        detail = getattr(exc, "detail", "") or ""
        await sync_to_async(messages.error)(
            request,
            _("%(name)s does not answer: %(error)s")
            % {"name": host.name, "error": f"{exc} {detail}".strip()},
        )
    else:
        version = facts.get("version") or facts.get("libvirt_version") or ""
        await sync_to_async(messages.success)(
            request,
            _("%(name)s answers (%(engine)s %(version)s).")
            % {"name": host.name, "engine": host.get_engine_display(), "version": version},
        )
    return redirect("dashboard:index")


async def session_stop(request: HttpRequest, session_id) -> HttpResponse:
    if not await _is_admin(request):
        raise PermissionDenied
    if request.method != "POST":
        return HttpResponse(status=405)
    session = await database_sync_to_async(get_object_or_404)(
        LabSession.objects.select_related("owner", "lab"), pk=session_id
    )
    student, target = session.owner.username, f"{session.owner.username} / {session.lab.title}"
    if await database_sync_to_async(services.request_stop)(session, EndReason.ADMIN):
        runner.kick(session.pk, State.STOPPING)
        await arecord(
            request.user, "session_stopped", session=session.pk, target=target, by="admin"
        )
        await sync_to_async(messages.success)(
            request, _("Stopping %(student)s's lab.") % {"student": student}
        )
    return redirect("dashboard:index")


@database_sync_to_async
def _is_admin(request: HttpRequest) -> bool:
    return request.user.is_authenticated and is_admin(request.user)
