"""Live feeds: the Subscription root, the events it delivers, and what a subscription asks.

An event is rendered by executing the subscriber's own document against it, exactly as a
query's result is: the root field resolves to the event object (Strawberry's subscription
fields return their root value), and every field below goes through the same field hook,
redaction, location precision and access trail as in a query. The gateway
(gateway/subscriptions) decides which events reach whom — the row rule of the record's
type, evaluated on the event's record (policies/row_match.py) — and runs the rendering
once per group of subscribers that would see the same bytes.

Over HTTP these fields answer nothing: the gateway refuses subscription operations there
(they are served over WebSocket, graphql-transport-ws, on /graphql).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

import strawberry

from resolvers.outbox import TOPIC_ACTIVITY, TOPIC_REPORT
from schema.activities import Activity, Officer, load_officer
from schema.common import Ctx, area_code_argument, int_id
from schema.context import GraphQLContext
from schema.errors import BadInputError
from schema.reports import Report, ReportState

WEBSOCKET_ONLY = "subscriptions are served over WebSocket (graphql-transport-ws) on /graphql"
EVENT_ID_DESCRIPTION = ("The event's id: increasing in the order events happened. Pass the "
                        "last one you received as `after` when you subscribe again, to be "
                        "sent what you missed first.")
AFTER_DESCRIPTION = ("Replay the events after this event id (what you missed while "
                     "disconnected, under your current rights), then continue live.")


After = Annotated[strawberry.ID | None, strawberry.argument(description=AFTER_DESCRIPTION)]


@strawberry.type(description="An officer activity, as it was recorded.")
class ActivityEvent:
    event_id: strawberry.ID | None = strawberry.field(description=EVENT_ID_DESCRIPTION)
    activity: Activity | None


@strawberry.type(description="A community report, as it was submitted or triaged.")
class ReportEvent:
    event_id: strawberry.ID | None = strawberry.field(description=EVENT_ID_DESCRIPTION)
    report: Report | None


@strawberry.type(description="Where an officer was last recorded: their latest activity.")
class OfficerPosition:
    event_id: strawberry.ID | None = strawberry.field(description=EVENT_ID_DESCRIPTION)
    activity: Activity | None
    officer_id: strawberry.Private[int]

    @strawberry.field
    async def officer(self, info: Ctx) -> Officer | None:
        return await load_officer(info, self.officer_id)


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """One subscription's feed: which events (topic, filters), judged by which type's row
    rule, replayed from where."""

    field: str
    topic: str
    type_name: str
    after: int | None = None
    officer_id: int | None = None
    joint_only: bool = False
    status: str | None = None
    area_code: str | None = None
    # officerPositions without `after`: start from each officer's latest position.
    snapshot: bool = False

    def passes(self, record: Mapping[str, Any], shown_area: str | None) -> bool:
        """The subscription's own filters, on the event's record. The area filter reads the
        area the subscriber is *shown* (its location precision): filtering by a finer
        area than one may see would tell where a record lies (SPEC rules 5 and 7)."""
        if self.officer_id is not None and record.get("officer_id") != self.officer_id:
            return False
        if self.joint_only and record.get("joint_operation") is not True:
            return False
        if self.status is not None and record.get("status") != self.status:
            return False
        return self.area_code is None or (
            shown_area is not None
            and (shown_area == self.area_code or shown_area.startswith(self.area_code + ".")))


# Which readable field each feed argument reveals (SPEC rule 5), by GraphQL names.
FEED_ARGUMENT_FIELDS = {
    ("activityRecorded", "officerId"): ("Activity", "officer"),
    ("activityRecorded", "jointOnly"): ("Activity", "jointOperation"),
    ("reportUpdated", "status"): ("Report", "status"),
    ("reportUpdated", "areaCode"): ("Report", "areaCode"),
}


def feed_request(context: GraphQLContext, field_name: str,
                 args: Mapping[str, Any]) -> FeedRequest:
    """The feed a subscription's root field and arguments (GraphQL names, coerced) ask
    for. Filtering by a field the caller cannot read is FORBIDDEN, as in queries."""
    after = _event_id(args.get("after"))
    if field_name == "activityRecorded":
        officer = args.get("officerId")
        joint_only = bool(args.get("jointOnly"))
        if officer is not None:
            context.require_readable(*FEED_ARGUMENT_FIELDS[(field_name, "officerId")])
        if joint_only:
            context.require_readable(*FEED_ARGUMENT_FIELDS[(field_name, "jointOnly")])
        officer_id = int_id(officer) if officer is not None else None
        if officer is not None and officer_id is None:
            officer_id = -1  # an id no officer can have: no events, as in `activities`
        return FeedRequest(field_name, TOPIC_ACTIVITY, "Activity", after,
                           officer_id=officer_id, joint_only=joint_only)
    if field_name == "reportUpdated":
        status = args.get("status")
        area = args.get("areaCode")
        if status is not None:
            context.require_readable(*FEED_ARGUMENT_FIELDS[(field_name, "status")])
        if area is not None:
            context.require_readable(*FEED_ARGUMENT_FIELDS[(field_name, "areaCode")])
            area = area_code_argument(area, "areaCode")
        return FeedRequest(field_name, TOPIC_REPORT, "Report", after,
                           status=status.value if isinstance(status, Enum) else status,
                           area_code=area)
    if field_name == "officerPositions":
        return FeedRequest(field_name, TOPIC_ACTIVITY, "Activity", after,
                           snapshot=after is None)
    raise BadInputError("unknown feed")


def _event_id(value: Any) -> int | None:
    if value is None:
        return None
    event_id = int_id(str(value))
    if event_id is None or event_id < 0:
        raise BadInputError("after must be an event id you received")
    return event_id


def event_root(request: FeedRequest, event_id: int | None, row: Any) -> Any:
    """The object a feed's root field resolves to for one event: its record, as a query
    would return it (`row` was read at the subscriber's location precision)."""
    ident = strawberry.ID(str(event_id)) if event_id is not None else None
    if request.field == "activityRecorded":
        return ActivityEvent(event_id=ident, activity=Activity.from_row(row))
    if request.field == "reportUpdated":
        return ReportEvent(event_id=ident, report=Report.from_row(row))
    return OfficerPosition(event_id=ident, activity=Activity.from_row(row),
                           officer_id=row["officer_id"])


async def _websocket_only() -> AsyncGenerator[Any, None]:
    raise BadInputError(WEBSOCKET_ONLY)
    yield  # an async generator, as Strawberry requires of a subscription


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Officer field activities in your scope, as they "
                                         "are recorded.")
    async def activity_recorded(
        self,
        info: Ctx,
        officer_id: strawberry.ID | None = None,
        joint_only: bool = False,
        after: After = None,
    ) -> AsyncGenerator[ActivityEvent | None, None]:
        async for event in _websocket_only():
            yield event

    @strawberry.subscription(description="Community reports in your scope, as they are "
                                         "submitted and triaged.")
    async def report_updated(
        self,
        info: Ctx,
        status: ReportState | None = None,
        area_code: str | None = None,
        after: After = None,
    ) -> AsyncGenerator[ReportEvent | None, None]:
        async for event in _websocket_only():
            yield event

    @strawberry.subscription(description="The live map: first each officer's latest "
                                         "recorded position, then every new one.")
    async def officer_positions(
        self,
        info: Ctx,
        after: After = None,
    ) -> AsyncGenerator[OfficerPosition | None, None]:
        async for event in _websocket_only():
            yield event
