"""The pool keeper: keeps each lab's pool at its target, one pass per reconciler pass.

A pass decides everything in one go (``plan``), in the database, and then hands the work
to tasks, as the reconciler does for sessions:

- a member whose worker died half-way (its lease lapsed while starting or stopping) is
  removed, whatever it had made;
- a ready member that is stale (its lab was edited: another ``spec_digest``), on a host
  that no longer takes sessions, or beyond its lab's target, is removed;
- while students wait in the queue for room, ready members are removed, as many as there
  are students waiting: a pool never keeps a student from a host (pools shrink first);
- otherwise, while no cold start is under way (refilling never competes with a student's
  Start for the engine), missing members are started, at most ``LABSITE_WARM_POOL_PARALLEL``
  at a time over the whole site and at most ``LABSITE_WARM_POOL_MAX`` in all, round robin
  over the labs that lack some. A lab whose sandbox failed to start is left alone for a
  minute (a broken image must not loop).

A member is started and stopped under a lease like a session, so two reconcilers (or a
reconciler restarted) never make the same member twice and a dead worker's leftovers are
removed. Each engine listing (``observe_listing``) tells the reconciler which sandboxes
are pool members (not orphans) and marks for removal a ready member whose sandbox ended
or vanished, so a dead sandbox is never handed out.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.courses.models import Lab
from apps.hosts import placement
from apps.pools.claims import usable_host
from apps.pools.models import Member, WarmSandbox
from apps.pools.targets import targets
from apps.sessions import runner, sandbox
from apps.sessions.engines import DEFAULT_KEY_FOR_KIND
from apps.sessions.models import LabSession, State, lease_free
from apps.sessions.specs import labels_for, name_for, spec_digest, spec_for
from provisioning.base import Sandbox, SandboxStatus

log = logging.getLogger(__name__)
#: A lab whose pool sandbox failed to start is not refilled for this long.
FAILURE_BACKOFF = 60.0


@dataclass
class Plan:
    remove: list[uuid.UUID] = field(default_factory=list)
    #: Members just created (STARTING, leased to this worker), to be started.
    start: list[WarmSandbox] = field(default_factory=list)


class Keeper:
    def __init__(self) -> None:
        #: lab id → when its last pool start failed (time.monotonic()).
        self.failed_at: dict[int, float] = {}
        self._planning = False
        self._again = False

    async def run_once(self) -> None:
        """One pass; a pass asked for while one runs happens right after it (never two at
        once in a process, so two plans never count the same gap twice)."""
        if self._planning:
            self._again = True
            return
        self._planning = True
        try:
            while True:
                self._again = False
                await self._pass()
                if not self._again:
                    return
        finally:
            self._planning = False

    async def _pass(self) -> None:
        now = time.monotonic()
        resting = {lab for lab, at in self.failed_at.items() if now - at < FAILURE_BACKOFF}
        todo = await database_sync_to_async(plan)(timezone.now(), resting=resting)
        for member_id in todo.remove:
            runner.spawn(self.remove(member_id))
        for member in todo.start:
            runner.spawn(self._start_then_refill(member))

    async def _start_then_refill(self, member: WarmSandbox) -> None:
        """Start a member; once it is done, plan again at once: a pool refills continuously,
        ``LABSITE_WARM_POOL_PARALLEL`` at a time, not a couple per reconciler pass."""
        await self.start(member)
        await self.run_once()

    async def start(self, member: WarmSandbox) -> None:
        lab = member.lab
        spec = spec_for(lab, name=member.sandbox_name, labels=labels_for(lab, member.pk, ""))
        try:
            box = await runner.under_lease(
                sandbox.start_spec(member.backend, spec, lab.kind),
                lambda: _renew(member.pk, Member.STARTING),
                f"pool sandbox {member.sandbox_name}",
            )
        except asyncio.CancelledError:
            await self._remove_quietly(member)
            if asyncio.current_task().cancelling():
                raise
            return
        except Exception as exc:
            log.warning("pool sandbox for lab %s failed to start: %s", lab, exc)
            self.failed_at[lab.pk] = time.monotonic()
            await self._remove_quietly(member)
            await database_sync_to_async(_delete)(member.pk)
            return
        if await database_sync_to_async(_ready)(member.pk, box.engine_id):
            log.info("pool sandbox %s ready for lab %s", member.sandbox_name, lab)
        else:  # removed from under us (stale, or our lease lapsed)
            await self._remove_quietly(member)

    async def remove(self, member_id: uuid.UUID) -> None:
        member = await database_sync_to_async(_take_for_removal)(member_id)
        if member is None:
            return  # claimed by a Start meanwhile, or another worker has it
        try:
            await runner.under_lease(
                sandbox.remove_unclaimed(member.backend, _box(member)),
                lambda: _renew(member.pk, Member.STOPPING),
                f"pool sandbox {member.sandbox_name}",
            )
        except Exception:
            log.warning("could not remove pool sandbox %s; retried later", member.sandbox_name)
            return
        await database_sync_to_async(_delete)(member.pk)

    async def _remove_quietly(self, member: WarmSandbox) -> None:
        try:
            await sandbox.remove_unclaimed(member.backend, _box(member))
        except Exception:
            log.warning("cleanup of pool sandbox %s failed; the reconciler will retry",
                        member.sandbox_name)  # fmt: skip


KEEPER = Keeper()


def _box(member: WarmSandbox) -> Sandbox:
    return Sandbox(name=member.sandbox_name, engine_id=member.engine_id, labels={})


# -- the plan ------------------------------------------------------------------------------


def plan(now: datetime, *, resting: set[int] = frozenset()) -> Plan:
    """What this pass does (see the module's docstring). Creates the members to start."""
    todo = Plan()
    goal = targets(now)
    members = list(WarmSandbox.objects.select_related("lab__module", "host"))
    if not members and not goal:
        return todo
    usable = set(
        WarmSandbox.objects.filter(usable_host()).values_list("pk", flat=True)
    )  # fmt: skip
    digests: dict[int, str] = {}
    live: dict[int, list[WarmSandbox]] = defaultdict(list)
    for m in members:
        held = m.lease_owner and m.lease_expires_at and m.lease_expires_at >= now
        if m.state != Member.READY:
            if not held:
                todo.remove.append(m.pk)  # its worker died half-way
            elif m.state == Member.STARTING:
                live[m.lab_id].append(m)
            continue
        digest = digests.setdefault(m.lab_id, spec_digest(m.lab))
        if m.spec_digest != digest or m.pk not in usable:
            todo.remove.append(m.pk)
        else:
            live[m.lab_id].append(m)
    for lab_id, have in live.items():
        extra = len(have) - goal.get(lab_id, 0)
        if extra > 0:
            todo.remove += [m.pk for m in _newest_ready(have)[:extra]]
    kept = {lab: [m for m in have if m.pk not in todo.remove] for lab, have in live.items()}
    waiting = LabSession.objects.filter(state=State.REQUESTED, backend="").count()
    if waiting:
        # Students wait for room: the pools give theirs back, largest pool first.
        largest_first = sorted(kept.values(), key=len, reverse=True)
        ready = [m for have in largest_first for m in _newest_ready(have)]
        todo.remove += [m.pk for m in ready[:waiting]]
        return todo
    if LabSession.objects.filter(state__in=(State.REQUESTED, State.STARTING)).exists():
        return todo  # cold starts have the engine; refill afterwards
    in_all = sum(len(have) for have in kept.values())
    starting = sum(1 for have in kept.values() for m in have if m.state == Member.STARTING)
    budget = min(
        settings.LABSITE_WARM_POOL_PARALLEL - starting, settings.LABSITE_WARM_POOL_MAX - in_all
    )
    lacking = {
        lab_id: n - len(kept.get(lab_id, []))
        for lab_id, n in goal.items()
        if lab_id not in resting and n > len(kept.get(lab_id, []))
    }
    for lab_id in _round_robin(lacking, budget):
        member = _create_member(lab_id)
        if member is None:
            lacking.pop(lab_id, None)  # no room anywhere for this lab now
            continue
        todo.start.append(member)
    return todo


def _newest_ready(have: list[WarmSandbox]) -> list[WarmSandbox]:
    ready = [m for m in have if m.state == Member.READY]
    return sorted(ready, key=lambda m: m.ready_at or m.created_at, reverse=True)


def _round_robin(lacking: dict[int, int], budget: int) -> list[int]:
    picks, left = [], dict(lacking)
    while budget > 0 and left:
        for lab_id in list(left):
            if budget <= 0:
                break
            picks.append(lab_id)
            budget -= 1
            left[lab_id] -= 1
            if not left[lab_id]:
                del left[lab_id]
    return picks


def _create_member(lab_id: int) -> WarmSandbox | None:
    """A STARTING member of ``lab_id``'s pool, placed on a host with room (its place is
    taken at once, under the same locks as a Start's), or None when none has room."""
    with transaction.atomic():
        lab = Lab.objects.select_related("module").get(pk=lab_id)
        try:
            where = placement.place(lab)
        except placement.NoHostForLab:
            return None
        if where.queued:
            return None
        member_id = uuid.uuid4()
        backend = where.host.backend_key if where.host else DEFAULT_KEY_FOR_KIND[lab.kind]
        return WarmSandbox.objects.create(
            id=member_id,
            lab=lab,
            host=where.host,
            backend=backend,
            state=Member.STARTING,
            spec_digest=spec_digest(lab),
            sandbox_name=name_for(member_id),
            lease_owner=runner.WORKER,
            lease_expires_at=timezone.now() + runner.LEASE,
        )


# -- row changes ---------------------------------------------------------------------------


@database_sync_to_async
def _renew(member_id, state: Member) -> bool:
    rows = WarmSandbox.objects.filter(pk=member_id, state=state, lease_owner=runner.WORKER)
    return bool(rows.update(lease_expires_at=timezone.now() + runner.LEASE))


def _ready(member_id, engine_id: str) -> bool:
    rows = WarmSandbox.objects.filter(
        pk=member_id, state=Member.STARTING, lease_owner=runner.WORKER
    )
    return bool(
        rows.update(
            state=Member.READY,
            engine_id=engine_id,
            ready_at=timezone.now(),
            lease_owner="",
            lease_expires_at=None,
        )
    )


def _take_for_removal(member_id) -> WarmSandbox | None:
    """Lease the member for its removal: a ready one (a Start may still take it first:
    then this finds nothing), or one whose worker's lease lapsed."""
    now = timezone.now()
    rows = WarmSandbox.objects.filter(pk=member_id).filter(
        lease_free(now), state__in=(Member.READY, Member.STARTING, Member.STOPPING)
    )
    if not rows.update(
        state=Member.STOPPING, lease_owner=runner.WORKER, lease_expires_at=now + runner.LEASE
    ):
        return None
    return WarmSandbox.objects.get(pk=member_id)


def _delete(member_id) -> None:
    WarmSandbox.objects.filter(pk=member_id).delete()


# -- what each engine listing tells ------------------------------------------------------------


@database_sync_to_async
def observe_listing(key: str, found: list[Sandbox], listed_at) -> set[str]:
    """The pool members in ``found`` (so they are no orphans); a ready member whose sandbox
    stopped by itself or vanished is marked for removal, never handed out."""
    listed = {box.session_id: box for box in found if box.session_id}
    mine = set()
    for member_id, state, ready_at in WarmSandbox.objects.filter(backend=key).values_list(
        "pk", "state", "ready_at"
    ):
        box = listed.get(str(member_id))
        if box is not None:
            mine.add(str(member_id))
        ended = box is None or box.status == SandboxStatus.EXITED
        if state == Member.READY and ready_at and ready_at < listed_at and ended:
            log.info("pool sandbox of %s ended by itself; removing it", member_id)
            WarmSandbox.objects.filter(pk=member_id, state=Member.READY).update(
                state=Member.STOPPING, lease_owner="", lease_expires_at=None
            )
    return mine
