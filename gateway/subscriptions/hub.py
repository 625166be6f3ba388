"""Which subscriber gets which event, rendered how many times.

Subscribers are grouped by everything their rendering depends on: the feed and its
filters, the role, the level of their area and the claims the role's row rules compare
(area, officer id, …), whether their purpose lets them read recorded fields, and the
document with its variables. Each event is decided and rendered once per group, and the
same payload text goes to every socket of the group (only the subscription id in front
differs): the work per event grows with the groups, not with the subscribers.

Row decision: the role's compiled row filter of the record's type, evaluated on the
event's record (policies/row_match.py) — the filter queries use in SQL. The record is then
read once per location precision among the groups that passed, and rendered.

Order and replay: one relay task dispatches events in id order under `_lock`. A subscriber
with `after` is first replayed the events it missed (outside the lock, at most
`event_replay_max`), then, under the lock, whatever arrived meanwhile, and joins its group
there: nothing between is skipped, and `last_sent` drops anything seen twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from gateway import metrics
from gateway.logging import log
from gateway.subscriptions.codes import REPLAY_TOO_LONG
from gateway.subscriptions.render import Renderer, Selection, Subscriber
from policies import Principal, RoleAccess
from policies.row_filters import Claim
from policies.row_match import row_matches
from resolvers import outbox
from resolvers.outbox import OutboxEvent
from resolvers.scopes import row_condition
from schema.subscriptions import FeedRequest, event_root

# Officers on one live map at most (an office's staff; `officers` returns no more).
MAX_POSITIONS = 500
# Replayed renders kept for other members of the same group resuming over the same events
# (a crowd reconnecting at once renders each missed event once per group, not per socket).
REPLAY_CACHE_ENTRIES = 4096


class Sink(Protocol):
    """Where a member's frames go: its socket's bounded queue."""

    def send_next(self, op_id: str, payload: str) -> None: ...

    def send_error(self, op_id: str, errors: list[dict[str, Any]]) -> None: ...

    def forget(self, op_id: str) -> None: ...


class _NotShared(Exception):
    """A replayed render that carries recorded values: every member renders its own."""


class ReplayTooLongError(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} events to replay after that id: subscribe "
                         "without `after` and read the history with a query")
        self.limit = limit

    def formatted(self) -> list[dict[str, Any]]:
        return [{"message": str(self), "extensions": {"code": REPLAY_TOO_LONG}}]


@dataclass(eq=False)
class Member:
    """One subscription of one socket."""

    sink: Sink
    op_id: str
    subscriber: Subscriber
    selection: Selection
    request: FeedRequest
    # The last event id this member was sent (or chose to start after).
    last_sent: int = 0
    group: Group | None = None


@dataclass(eq=False)
class Group:
    key: tuple[Any, ...]
    # The first member's principal and purpose: every member's would render the same.
    principal: Principal
    purpose: str | None
    selection: Selection
    request: FeedRequest
    members: dict[int, Member] = field(default_factory=dict)


def group_key(member: Member, access: RoleAccess, purpose_allowed: bool) -> tuple[Any, ...]:
    principal = member.subscriber.principal
    level = principal.area_level
    claims = sorted({c.value.name for row_filter in access.row_filters.get(level, {}).values()
                     for conjunction in row_filter for c in conjunction
                     if isinstance(c.value, Claim)})
    selection = member.selection
    variables = orjson.dumps(selection.variables, option=orjson.OPT_SORT_KEYS)
    # `after` and the snapshot only shape the start; the live stream is the same.
    live = dataclasses.replace(member.request, after=None, snapshot=False)
    return (live, access.role, level, tuple((n, getattr(principal, n, None)) for n in claims),
            purpose_allowed, selection.query, selection.operation_name, variables)


class FeedHub:
    def __init__(self, state: Any, renderer: Renderer) -> None:
        self.state = state
        self.renderer = renderer
        self.groups: dict[tuple[Any, ...], Group] = {}
        # The last event id dispatched: the relay moves it, under `_lock`.
        self.last_id = 0
        self._lock = asyncio.Lock()
        # (group key, event id) -> the replayed payload, None when the group does not see
        # the event, or the render in flight; bounded, oldest out first. Only payloads
        # without recorded values are kept: those are written to the trail per subscriber.
        self._replayed: dict[tuple[Any, ...], asyncio.Future[str | None]] = {}

    # -- membership ---------------------------------------------------------------------

    async def join(self, member: Member) -> None:
        """Replay what `after` asks for, then go live; raises ReplayTooLongError."""
        request = member.request
        if request.after is not None:
            member.last_sent = min(request.after, self.last_id)
            await self._check_replay(member)
            await self._replay(member, self.last_id)
        elif request.snapshot:
            # Outside the lock, like a replay: the starting map is a render per officer, and
            # a crowd of maps joining at once must not hold up every feed's live events.
            # What moves meanwhile is replayed below.
            member.last_sent = self.last_id
            await self._snapshot(member, member.last_sent)
        async with self._lock:
            if request.after is not None or request.snapshot:
                await self._replay(member, self.last_id)
            else:
                member.last_sent = self.last_id
            self._add(member)

    def leave(self, member: Member) -> None:
        group = member.group
        if group is None:
            return
        if group.members.pop(id(member), None) is not None:
            metrics.subscriptions_changed(-1)
        member.group = None
        if not group.members:
            self.groups.pop(group.key, None)

    def _add(self, member: Member) -> None:
        principal = member.subscriber.principal
        access = self.state.access_for(principal)
        allowed = access.purpose_allows(member.subscriber.purpose)
        key = group_key(member, access, allowed)
        group = self.groups.get(key)
        if group is None:
            group = Group(key, principal, member.subscriber.purpose, member.selection,
                          member.request)
            self.groups[key] = group
        group.members[id(member)] = member
        member.group = group
        metrics.subscriptions_changed(1)

    def policy_reloaded(self) -> None:
        """End every subscription: each was checked (its root field, its filters) and
        grouped (by the claims the row rules compare) under the old policy, and neither
        may outlive it. A feed the new policy closes to the role ends with FORBIDDEN; any
        other with POLICY_RELOADED, and the client subscribes again with `after` set to
        the last eventId it received, missing nothing (the replay runs under the new
        policy)."""
        # Renders kept for replays were made under the old policy.
        self._replayed.clear()
        for group in list(self.groups.values()):
            access = self.state.access_for(group.principal)
            if access.may_read("Subscription", group.request.field):
                error = {"message": "the access policy changed: subscribe again, with "
                                    "`after` set to the last eventId received",
                         "extensions": {"code": "POLICY_RELOADED"}}
            else:
                error = {"message": f"not allowed to use Subscription.{group.request.field}",
                         "extensions": {"code": "FORBIDDEN"}}
            for member in list(group.members.values()):
                self.leave(member)
                member.sink.send_error(member.op_id, [error])
                member.sink.forget(member.op_id)

    # -- live ---------------------------------------------------------------------------

    async def dispatch(self, events: Sequence[OutboxEvent]) -> None:
        """Events in id order (the relay's), each to every group it belongs to."""
        async with self._lock:
            for event in events:
                groups = [g for g in self.groups.values()
                          if g.request.topic == event.topic and g.members]
                if groups:
                    try:
                        await self._deliver(event, groups)
                    except Exception as exc:  # one bad event must not stop the feed
                        log.error("events.dispatch_failed", event_id=event.id,
                                  error=type(exc).__name__)
                self.last_id = max(self.last_id, event.id)

    async def _deliver(self, event: OutboxEvent, groups: list[Group]) -> None:
        rows: dict[Any, Any] = {}
        chosen = []
        for group in groups:
            row = await self._visible_row(event, group.principal, group.request, rows)
            if row is not None:
                chosen.append((group, row))
        await asyncio.gather(*(self._render_group(group, event.id, row)
                               for group, row in chosen))

    async def _visible_row(self, event: OutboxEvent, principal: Principal,
                           request: FeedRequest, rows: dict[Any, Any]) -> Any:
        """The event's record as `principal` may see it, or None when the row rule or the
        subscription's filters leave it out. Rows are read once per precision per event."""
        access = self.state.access_for(principal)
        row_filter = access.row_filter(request.type_name, principal.area_level)
        if not row_matches(row_filter, event.record, principal):
            return None
        precision = access.location_precision.get(request.type_name)
        if precision not in rows:
            found = await outbox.located_rows(self.state.db, request.type_name, precision,
                                              [event.record_id])
            rows[precision] = found.get(event.record_id)
        row = rows[precision]
        if row is None or not request.passes(event.record, row["area_code"]):
            return None
        return row

    async def _render_group(self, group: Group, event_id: int, row: Any) -> None:
        members = [m for m in group.members.values() if m.last_sent < event_id]
        if not members:
            return
        payload = await self.renderer.render(
            group.principal, group.purpose, group.selection,
            event_root(group.request, event_id, row), [m.subscriber for m in members])
        for member in members:
            if member.last_sent < event_id:
                member.last_sent = event_id
                member.sink.send_next(member.op_id, payload)

    # -- replay and the live map's start ------------------------------------------------

    async def _check_replay(self, member: Member) -> None:
        limit = self.state.settings.event_replay_max
        count = await outbox.events_between(self.state.db, member.request.topic,
                                            member.last_sent, self.last_id, limit)
        if count > limit:
            raise ReplayTooLongError(limit)

    async def _replay(self, member: Member, up_to: int) -> None:
        """The member's feed's events in (last_sent, up_to], under its current rights."""
        batch = self.state.settings.event_batch_size
        while member.last_sent < up_to:
            events = await outbox.events_after(self.state.db, member.last_sent, batch,
                                               topics=(member.request.topic,), up_to=up_to)
            if not events:
                break
            for event in events:
                await self._send_one(member, event)
                member.last_sent = event.id

    async def _send_one(self, member: Member, event: OutboxEvent) -> None:
        key = (self._group_key(member), event.id)
        shared = self._replayed.get(key)
        if shared is not None:
            try:
                payload = await asyncio.shield(shared)
            except Exception:  # that render failed: render again, for this member alone
                payload = await self._render_one(member, event, key=None)
        else:
            payload = await self._render_one(member, event, key=key)
        if payload is not None:
            member.sink.send_next(member.op_id, payload)

    async def _render_one(self, member: Member, event: OutboxEvent,
                          key: tuple[Any, ...] | None) -> str | None:
        """The member's payload for a replayed event (None: not for it), shared under `key`
        with the group's other members replaying it unless it carries recorded values."""
        shared: asyncio.Future[str | None] | None = None
        if key is not None:
            shared = asyncio.get_running_loop().create_future()
            self._replayed[key] = shared
            while len(self._replayed) > REPLAY_CACHE_ENTRIES:
                self._replayed.pop(next(iter(self._replayed)))
        try:
            subscriber = member.subscriber
            row = await self._visible_row(event, subscriber.principal, member.request, {})
            payload: str | None = None
            recorded = False
            if row is not None:
                payload, recorded = await self.renderer.render_recorded(
                    subscriber.principal, subscriber.purpose, member.selection,
                    event_root(member.request, event.id, row), [subscriber])
        except BaseException as exc:
            if shared is not None:
                self._replayed.pop(key, None)  # type: ignore[arg-type]
                shared.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
                shared.exception()  # retrieved: the waiters render on their own
            raise
        if shared is not None:
            if recorded:
                # Written to the trail for this subscriber only: the others render their own.
                self._replayed.pop(key, None)  # type: ignore[arg-type]
                shared.set_exception(_NotShared())
                shared.exception()
            else:
                shared.set_result(payload)
        return payload

    def _group_key(self, member: Member) -> tuple[Any, ...]:
        principal = member.subscriber.principal
        access = self.state.access_for(principal)
        return group_key(member, access, access.purpose_allows(member.subscriber.purpose))

    async def _snapshot(self, member: Member, up_to: int) -> None:
        """The live map's start: each officer's latest activity the member may see, at
        the member's precision, scoped in SQL by the same row filter. A position whose
        event is past `up_to` is left out: the replay after it sends that event (sent
        here too, it would arrive twice)."""
        subscriber = member.subscriber
        principal = subscriber.principal
        access = self.state.access_for(principal)
        scope = row_condition("Activity", access.row_filter("Activity", principal.area_level),
                              principal)
        rows = await outbox.last_positions(self.state.db, scope,
                                           access.location_precision.get("Activity"),
                                           MAX_POSITIONS)
        event_ids = await outbox.event_ids_of(self.state.db, member.request.topic,
                                              [row["id"] for row in rows])
        for row in rows:
            event_id = event_ids.get(row["id"])
            if event_id is not None and event_id > up_to:
                continue
            payload = await self.renderer.render(
                principal, subscriber.purpose, member.selection,
                event_root(member.request, event_id, row), [subscriber])
            member.sink.send_next(member.op_id, payload)


Dispatch = Callable[[Sequence[OutboxEvent]], Awaitable[None]]
