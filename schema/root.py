"""Query, Mutation and Subscription, composed from the domain modules into one federated schema."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLObjectType, get_operation_ast
from graphql.execution.middleware import MiddlewareManager
from strawberry.extensions import SchemaExtension
from strawberry.federation.schema import FederationAny
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from strawberry.utils.str_converters import to_camel_case

from resolvers import commands, queries
from resolvers.identity import IdentityUnavailableError, LookupTooBroadError
from resolvers.paging import (
    CursorError,
    CursorSeal,
    Page,
    PageSizeError,
    check_page_size,
    decode_cursor,
)
from resolvers.trail import CURSOR_KIND as TRAIL_CURSOR
from resolvers.trail import TrailFilter, trail_page, trail_position
from schema.access_trail import (
    TRAIL_FILTER_FIELDS,
    AccessTrailConnection,
    AccessTrailEntry,
    AccessTrailFilter,
    check_trail_filter,
)
from schema.activities import (
    Activity,
    ActivityConnection,
    Officer,
    RecordActivityInput,
    load_officer,
)
from schema.areas import Area, AreaLevel, load_area, max_areas_listed
from schema.budget import BudgetedExecutor
from schema.common import (
    UTC_DATETIME,
    Ctx,
    PageInfo,
    area_code_argument,
    document_number_argument,
    enum_value,
    int_id,
    opened_cursor,
)
from schema.context import note_operation
from schema.cost import (
    LOCATED_PAGE_WEIGHT,
    STATEMENT_WEIGHT,
    bounded,
    unbounded_list_fields,
    weighted,
)
from schema.error_handling import ErrorMasking, log_errors
from schema.errors import (
    BadInputError,
    ForbiddenError,
    NotFoundError,
    UpstreamUnavailableError,
)
from schema.federation import ServiceExposure, checked_representations
from schema.foreigners import (
    Foreigner,
    ForeignerCheck,
    ForeignerConnection,
    ForeignerFilterInput,
    ForeignerOrder,
    attach_identity,
    load_foreigner,
    page_nodes,
)
from schema.identity import resolve_attribute
from schema.introspection_view import (
    ArgumentGuards,
    IntrospectionViews,
    mentions_introspection,
)
from schema.limits import QueryLimits, QueryLimitsExtension
from schema.me import Me
from schema.privacy import FieldPolicy, PolicyMiddleware
from schema.reports import (
    Report,
    ReportCategory,
    ReportConnection,
    ReportReceipt,
    ReportState,
    ReportStatus,
    SubmitReportInput,
    UpdateReportInput,
    load_report,
)
from schema.subscriptions import FEED_ARGUMENT_FIELDS, Subscription
from schema.trail import note_reads

# An office's staff, for the cost estimate (schema/cost.py); `officers` returns no more.
MAX_OFFICERS = 500
MAX_TEXT = 4000
MAX_CONTACT = 200

# Which readable field each filter or sort argument reveals (SPEC rule 5: no side channel).
FOREIGNER_FILTER_FIELDS = {
    "area_code": ("Residence", "areaCode"),
    "nationality": ("Foreigner", "nationality"),
    "permit_type": ("Foreigner", "permitType"),
    "permit_status": ("Foreigner", "permitStatus"),
    "expires_before": ("Foreigner", "permitExpiresOn"),
    "name": ("Foreigner", "fullName"),
    "document_number": ("Foreigner", "passportNumber"),
}
FOREIGNER_ORDER_FIELDS = {
    ForeignerOrder.ID: ("Foreigner", "id"),
    ForeignerOrder.PERMIT_EXPIRES_ON: ("Foreigner", "permitExpiresOn"),
}
REPORT_ARGUMENT_FIELDS = {"status": ("Report", "status"), "category": ("Report", "category")}
ACTIVITY_ARGUMENT_FIELDS = {
    "officer_id": ("Activity", "officer"),
    "since": ("Activity", "occurredAt"),
    "joint_only": ("Activity", "jointOperation"),
}
# A field check searches by document number: it reads passport numbers.
CHECK_FOREIGNER_FIELD = ("Foreigner", "passportNumber")
# People in the whole registry one name look-up may match. Every match is then scoped here,
# so what the caller sees depends on their own scope only; a name broader than this across
# the registry is refused (narrow it), never truncated into a silently partial list.
NAME_SCAN_LIMIT = 20_000


def _page_size(first: int) -> int:
    try:
        return check_page_size(first)
    except PageSizeError as exc:
        raise BadInputError(str(exc)) from exc


async def _fetched(page: Awaitable[Page]) -> Page:
    """A page of rows; a cursor that does not decode is the caller's error."""
    try:
        return await page
    except CursorError as exc:
        raise BadInputError("invalid cursor") from exc


async def _foreigner_filter(info: Ctx,
                            given: ForeignerFilterInput | None) -> queries.ForeignerFilter:
    if given is None:
        return queries.ForeignerFilter()
    values: dict[str, Any] = {
        "area_code": given.area_code,
        "nationality": given.nationality,
        "permit_type": enum_value(given.permit_type),
        "permit_status": enum_value(given.permit_status),
        "expires_before": given.expires_before,
        "name": given.name,
        "document_number": given.document_number,
    }
    for name, value in values.items():
        if value is not None:
            info.context.require_readable(*FOREIGNER_FILTER_FIELDS[name])
    if given.area_code is not None:
        values["area_code"] = area_code_argument(given.area_code, "areaCode")
    number = values.pop("document_number")
    if number is not None:
        number = document_number_argument(number)
    name = values.pop("name")
    if name is not None and not (2 <= len(name) <= 100 and name.isprintable()):
        raise BadInputError("name must be 2 to 100 characters of text")
    # Identity filters are the registry's look-ups; their ids are then scoped in SQL.
    ids: set[int] | None = None
    if number is not None:
        ids = set(await _registry_ids(info.context.loaders.identity_source.ids_by_document(
            number, info.context.loaders.request_id)))
    if name is not None:
        named = set(await _registry_ids(info.context.loaders.identity_source.ids_by_name(
            name, NAME_SCAN_LIMIT, info.context.loaders.request_id)))
        ids = named if ids is None else ids & named
    registry_ids = None
    if ids is not None:
        # Only the caller's own matches go on; each is a read of the identity searched (it
        # tells which record bears that name or document): recorded like the value itself.
        in_scope = await queries.foreigner_ids_in_scope(
            info.context.db, info.context.scopes["Foreigner"], sorted(ids))
        searched = {FOREIGNER_FILTER_FIELDS[key][1]: True
                    for key, given_value in (("name", name), ("document_number", number))
                    if given_value is not None}
        note_reads(info, "Foreigner", ((str(i), searched) for i in in_scope))
        registry_ids = tuple(in_scope)
    return queries.ForeignerFilter(**values, registry_ids=registry_ids)


async def _registry_ids(lookup: Awaitable[list[int]]) -> list[int]:
    """Ids a registry look-up matched; the registry's failures become the caller's errors."""
    try:
        return await lookup
    except LookupTooBroadError as exc:
        raise BadInputError(f"the name matches more than {exc.limit} people in the "
                            "registry: narrow it") from exc
    except IdentityUnavailableError as exc:
        raise UpstreamUnavailableError("the registry is unavailable; look-ups by name or "
                                       "document number cannot run") from exc


@strawberry.type
class Query:
    # `sisadaMe`, not `me`: a partner's supergraph has its own (README, naming rule).
    @strawberry.field(description="Who am I: role and jurisdiction from the token.")
    def sisada_me(self, info: Ctx) -> Me | None:
        principal = info.context.principal
        return Me(role=principal.role, area=principal.area, officer_id=principal.officer_id)

    @strawberry.field(description="A foreigner by id; null when missing or outside your scope.")
    async def foreigner(self, info: Ctx, id: strawberry.ID) -> Foreigner | None:
        return await load_foreigner(info, int_id(id))

    @strawberry.field(description="Foreigners in your scope, newest id last, cursor-paginated.",
                      metadata=weighted(STATEMENT_WEIGHT))
    async def foreigners(
        self,
        info: Ctx,
        filter: ForeignerFilterInput | None = None,
        order_by: ForeignerOrder = ForeignerOrder.ID,
        first: int = 50,
        after: str | None = None,
    ) -> ForeignerConnection | None:
        filters = await _foreigner_filter(info, filter)
        info.context.require_readable(*FOREIGNER_ORDER_FIELDS[order_by])
        page = await _fetched(queries.foreigner_page(
            info.context.db, info.context.scopes["Foreigner"], filters, order_by.value,
            _page_size(first), opened_cursor(info, after),
        ))
        nodes = await page_nodes(info, page.rows)
        return ForeignerConnection(nodes=nodes, page_info=PageInfo.of(page), filters=filters)

    @strawberry.field(description="Field check by passport or permit number: registered or not.",
                      metadata=weighted(STATEMENT_WEIGHT))
    async def check_foreigner(self, info: Ctx, document_number: str) -> ForeignerCheck | None:
        info.context.require_readable(*CHECK_FOREIGNER_FIELD)
        number = document_number_argument(document_number)
        loaders = info.context.loaders
        # The registry knows who holds the document; the office's scope decides whether
        # this caller may see them (an id outside it is simply absent).
        ids = await _registry_ids(loaders.identity_source.ids_by_document(number,
                                                                          loaders.request_id))
        row = await queries.foreigner_among(info.context.db, info.context.scopes["Foreigner"],
                                            ids)
        foreigner = Foreigner.from_row(row) if row else None
        if foreigner is not None:
            # `registered` with the holder's record tells who holds the document: a read.
            note_reads(info, "Foreigner", [(str(foreigner.db_id), {"passportNumber": True})])
            await attach_identity(info, [foreigner], "foreigner")
        return ForeignerCheck(document_number=number, registered=foreigner is not None,
                              foreigner=foreigner)

    @strawberry.field(description="An area by code; null when missing or outside your scope.")
    async def area(self, info: Ctx, code: str) -> Area | None:
        return await load_area(info, area_code_argument(code))

    @strawberry.field(description="Areas in your scope, optionally of one level or one parent.",
                      metadata=bounded(max_areas_listed, weight=STATEMENT_WEIGHT))
    async def areas(
        self, info: Ctx, level: AreaLevel | None = None, parent_code: str | None = None
    ) -> list[Area] | None:
        if parent_code is not None:
            parent_code = area_code_argument(parent_code, "parentCode")
        rows = await queries.areas(info.context.db, info.context.scopes["Area"],
                                   enum_value(level), parent_code)
        return [Area.from_row(row) for row in rows]

    @strawberry.field(description="A report by id; null when missing or outside your scope.")
    async def report(self, info: Ctx, id: strawberry.ID) -> Report | None:
        return await load_report(info, int_id(id))

    @strawberry.field(description="Reports in your scope, newest first.",
                      metadata=weighted(LOCATED_PAGE_WEIGHT))
    async def reports(
        self,
        info: Ctx,
        status: ReportState | None = None,
        category: ReportCategory | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> ReportConnection | None:
        if status is not None:
            info.context.require_readable(*REPORT_ARGUMENT_FIELDS["status"])
        if category is not None:
            info.context.require_readable(*REPORT_ARGUMENT_FIELDS["category"])
        page = await _fetched(queries.report_page(
            info.context.db, info.context.scopes["Report"], enum_value(status),
            enum_value(category), _page_size(first), opened_cursor(info, after),
            info.context.access.location_precision.get("Report"),
        ))
        return ReportConnection(
            nodes=[Report.from_row(row) for row in page.rows],
            page_info=PageInfo.of(page),
        )

    @strawberry.field(description="The status of a report, for whoever holds its receipt code.")
    async def report_status(self, info: Ctx, receipt_code: str) -> ReportStatus | None:
        if len(receipt_code) > 32:
            return None
        row = await queries.report_status(info.context.db, receipt_code)
        if row is None:
            return None
        return ReportStatus(receipt_code=row["receipt_code"], status=row["status"],
                            updated_at=row["updated_at"])

    @strawberry.field(description="The access trail, newest first: who was sent which "
                                  "recorded fields of which record (names, never values).",
                      metadata=weighted(STATEMENT_WEIGHT))
    async def access_trail(
        self,
        info: Ctx,
        filter: AccessTrailFilter | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> AccessTrailConnection | None:
        check_trail_filter(info, filter)
        given = filter or AccessTrailFilter()
        foreigner = None
        if given.foreigner_id is not None:
            foreigner = int_id(given.foreigner_id)
            if foreigner is None:
                return AccessTrailConnection(nodes=[], page_info=PageInfo.of(
                    Page(rows=[], end_cursor=None, has_next_page=False)))
        filters = TrailFilter(subject=given.subject, role=given.role, purpose=given.purpose,
                              since=given.since, until=given.until, foreigner_id=foreigner)
        size, cursor = _page_size(first), opened_cursor(info, after)
        position = None
        if cursor is not None:
            try:
                position = trail_position(decode_cursor(TRAIL_CURSOR, cursor))
            except (CursorError, ValueError) as exc:
                raise BadInputError("invalid cursor") from exc
        page = await trail_page(info.context.db, info.context.scopes["AccessTrailEntry"],
                                filters, size, position)
        return AccessTrailConnection(nodes=[AccessTrailEntry.from_row(r) for r in page.rows],
                                     page_info=PageInfo.of(page))

    @strawberry.field
    async def officer(self, info: Ctx, id: strawberry.ID) -> Officer | None:
        return await load_officer(info, int_id(id))

    @strawberry.field(metadata=bounded(MAX_OFFICERS, weight=STATEMENT_WEIGHT))
    async def officers(self, info: Ctx) -> list[Officer] | None:
        rows = await queries.officers(info.context.db, info.context.scopes["Officer"])
        return [Officer.from_row(row) for row in rows]

    @strawberry.field(description="Officer field activities in your scope, newest first.",
                      metadata=weighted(LOCATED_PAGE_WEIGHT))
    async def activities(
        self,
        info: Ctx,
        officer_id: strawberry.ID | None = None,
        since: dt.datetime | None = None,
        joint_only: bool = False,
        first: int = 50,
        after: str | None = None,
    ) -> ActivityConnection | None:
        if officer_id is not None:
            info.context.require_readable(*ACTIVITY_ARGUMENT_FIELDS["officer_id"])
        if since is not None:
            info.context.require_readable(*ACTIVITY_ARGUMENT_FIELDS["since"])
        if joint_only:
            info.context.require_readable(*ACTIVITY_ARGUMENT_FIELDS["joint_only"])
        cursor, size = opened_cursor(info, after), _page_size(first)
        officer = int_id(officer_id) if officer_id is not None else None
        if officer_id is not None and officer is None:
            # An id no officer can have: the activities of a missing officer, none.
            page = Page(rows=[], end_cursor=None, has_next_page=False)
        else:
            page = await _fetched(queries.activity_page(
                info.context.db, info.context.scopes["Activity"], officer, since, joint_only,
                size, cursor, info.context.access.location_precision.get("Activity"),
            ))
        return ActivityConnection(
            nodes=[Activity.from_row(row) for row in page.rows],
            page_info=PageInfo.of(page),
        )


async def _located_area(info: Ctx, given: str) -> str:
    code = area_code_argument(given, "areaCode")
    if not await commands.locatable_area(info.context.db, code):
        raise BadInputError("areaCode must be an existing kelurahan, RW or RT code")
    return code


async def _visible_foreigner_id(info: Ctx, value: strawberry.ID | None) -> int | None:
    """A foreigner id the caller can see; any other id is 'unknown', missing or not (no oracle)."""
    if value is None:
        return None
    foreigner = await load_foreigner(info, int_id(value), with_identity=False)
    if foreigner is None:
        raise BadInputError("unknown foreigner")
    return foreigner.db_id


def _bounded_text(value: str | None, name: str, limit: int, required: bool = False) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if required and not value:
        raise BadInputError(f"{name} must not be empty")
    if len(value) > limit or "\x00" in value:
        raise BadInputError(f"{name} must be at most {limit} characters of text")
    return value or None


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Report a suspicious foreigner; anyone, also anonymously.")
    async def submit_report(self, info: Ctx, input: SubmitReportInput) -> ReportReceipt | None:
        text = _bounded_text(input.text, "text", MAX_TEXT, required=True)
        contact = _bounded_text(input.reporter_contact, "reporterContact", MAX_CONTACT)
        area_code = await _located_area(info, input.area_code)
        foreigner_id = await _visible_foreigner_id(info, input.foreigner_id)
        receipt = await commands.submit_report(
            info.context.db,
            category=input.category.value,
            text=text or "",
            area_code=area_code,
            reporter_contact=contact,
            foreigner_id=foreigner_id,
            submitter=info.context.principal,
        )
        info.context.events_written = True
        return ReportReceipt(receipt_code=receipt["receipt_code"], status=receipt["status"])

    @strawberry.mutation(description="Record a field activity of the calling officer.")
    async def record_activity(self, info: Ctx, input: RecordActivityInput) -> Activity | None:
        officer_id = info.context.principal.officer_id
        if officer_id is None or int_id(officer_id) is None:
            # An officer id the column cannot hold names no officer: as good as none.
            raise ForbiddenError("the token carries no officer id")
        if (input.latitude is None) != (input.longitude is None):
            raise BadInputError("latitude and longitude go together")
        if input.latitude is not None and not (-90 <= input.latitude <= 90
                                               and -180 <= input.longitude <= 180):
            raise BadInputError("latitude or longitude out of range")
        area_code = await _located_area(info, input.area_code)
        if await load_area(info, area_code) is None:
            # Officer ids are per office: an officer records work in their own area only.
            raise BadInputError("areaCode is outside your jurisdiction")
        subject = await _visible_foreigner_id(info, input.subject_foreigner_id)
        report_id = None
        if input.report_id is not None:
            report_id = int_id(input.report_id)
            if await load_report(info, report_id) is None:
                raise BadInputError("unknown report")
        activity_id = await commands.record_activity(
            info.context.db,
            officer_id=officer_id,
            kind=input.kind.value,
            area_code=area_code,
            latitude=input.latitude,
            longitude=input.longitude,
            subject_foreigner_id=subject,
            report_id=report_id,
            notes=_bounded_text(input.notes, "notes", MAX_TEXT),
            joint_operation=input.joint_operation or input.kind.value == "joint_operation",
            occurred_at=input.occurred_at,
        )
        info.context.events_written = True
        row = await info.context.loaders.activity.load(activity_id)
        return Activity.from_row(row) if row else None

    @strawberry.mutation(description="Triage a report: change its status or assigned officer.")
    async def update_report(self, info: Ctx, input: UpdateReportInput) -> Report | None:
        officer_id = None
        if input.assigned_officer_id is not None:
            officer_id = int_id(input.assigned_officer_id)
            if await load_officer(info, officer_id) is None:
                raise BadInputError("unknown officer")
        report_id = int_id(input.id)
        if report_id is None:
            raise NotFoundError("no such report")
        updated = await commands.update_report(
            info.context.db, info.context.scopes["Report"], report_id,
            enum_value(input.status), officer_id,
        )
        if not updated:
            raise NotFoundError("no such report")
        info.context.events_written = True
        info.context.loaders.report.clear(report_id)
        return await load_report(info, report_id)


class SisadaSchema(strawberry.federation.Schema):
    # Seals the cursors of every connection (schema.common.PageInfo); set by build_schema.
    cursor_seal: CursorSeal
    # Each role's introspection (schema/introspection_view/); set by build_schema.
    introspection_views: IntrospectionViews

    # The annotations are Strawberry's own: they define the `_entities` field's type.
    def entities_resolver(
        self, info: strawberry.Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """Checked copies of the representations: Strawberry's resolver consumes its input,
        which graphql-core shares between aliases of `_entities` (schema.federation). A bad
        representation stays in its place as an error, which graphql-core reports at that
        item's path and resolves to null; the good ones are resolved together."""
        checked = checked_representations(representations)
        resolved = iter(super().entities_resolver(
            info, [entry for entry in checked if isinstance(entry, dict)]))
        return [next(resolved) if isinstance(entry, dict) else entry
                for entry in checked]

    def _get_middleware_manager(self, extensions: list[SchemaExtension]) -> MiddlewareManager:
        # The field policy as middleware that skips itself when the operation selects only
        # readable fields; any other resolving extension gets Strawberry's own manager.
        resolving = [e for e in extensions if e._implements_resolve()]
        if len(resolving) == 1 and isinstance(resolving[0], FieldPolicy):
            return PolicyMiddleware(resolving[0])
        return super()._get_middleware_manager(extensions)

    async def _execute_operation(
        self, execution_context: ExecutionContext, extensions_runner: Any,
        middleware_manager: MiddlewareManager | None, execute_function: Any,
        *args: Any, **kwargs: Any,
    ) -> Any:
        # Decided once, after parsing: without a manager graphql-core does not even test
        # one per field. (A falsy PolicyMiddleware alone costs one test per field.)
        if isinstance(middleware_manager, PolicyMiddleware) and not middleware_manager:
            middleware_manager = None
        if mentions_introspection(execution_context.query):
            # `__schema`/`__type` answer from the caller's role schema (one regex otherwise).
            execute_function = self.introspection_views.execute_function(
                execute_function, execution_context.graphql_document,
                execution_context.operation_name, execution_context.context)
        return await super()._execute_operation(
            execution_context, extensions_runner, middleware_manager, execute_function,
            *args, **kwargs
        )

    async def _handle_execution_result(
        self, context: ExecutionContext, result: Any, *args: Any, **kwargs: Any
    ) -> Any:
        # Every operation ends here, run or refused: the name it selected, once parsed.
        document = context.graphql_document
        operation = (None if document is None
                     else get_operation_ast(document, context.operation_name))
        note_operation(None if operation is None
                       else operation.name.value if operation.name is not None else "")
        return await super()._handle_execution_result(context, result, *args, **kwargs)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors, execution_context)


def build_schema(
    limits: QueryLimits | None = None,
    max_batch_operations: int = 10,
    field_policy: type[SchemaExtension] | None = FieldPolicy,
    cursor_key: bytes | None = None,
) -> strawberry.federation.Schema:
    """The federated schema. `field_policy` is replaced only by the benchmark's variants.

    `cursor_key` (64 bytes) seals pagination cursors; replicas must share it. Without one,
    a random key: cursors then work only within this process."""
    limits = limits or QueryLimits()
    extensions: list[Any] = [ErrorMasking, lambda: QueryLimitsExtension(limits),
                             lambda: ServiceExposure(limits.introspection)]
    if field_policy is not None:
        extensions.insert(0, field_policy)
    schema = SisadaSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Foreigner, Area],
        extensions=extensions,
        config=StrawberryConfig(batching_config={"max_operations": max_batch_operations},
                                default_resolver=resolve_attribute,
                                scalar_map={dt.datetime: UTC_DATETIME}),
        execution_context_class=BudgetedExecutor,
        # Pinned: Strawberry's default (2.11) is refused by older routers and by The Guild's
        # composition; 2.3 serves what the SDL uses (@key, @shareable) and all of them take it.
        federation_version="2.3",
    )
    unbounded = unbounded_list_fields(schema._schema)
    if unbounded:
        # The cost estimate multiplies by list bounds: an unbounded list would be a hole.
        raise TypeError(f"list fields without a bound (schema/cost.py): {unbounded}")
    schema.cursor_seal = CursorSeal(cursor_key or secrets.token_bytes(CursorSeal.KEY_BYTES))
    schema.introspection_views = IntrospectionViews(schema._schema, argument_guards())
    return schema


def argument_guards() -> ArgumentGuards:
    """The readable field each filter, sort and search argument reveals, by GraphQL name:
    the pairs the resolvers check, for what each role's introspection shows."""
    inputs = {("ForeignerFilterInput", to_camel_case(name)): pair
              for name, pair in FOREIGNER_FILTER_FIELDS.items()}
    inputs.update({("AccessTrailFilter", to_camel_case(name)): pair
                   for name, pair in TRAIL_FILTER_FIELDS.items()})
    arguments = {("Query", "reports", to_camel_case(name)): pair
                 for name, pair in REPORT_ARGUMENT_FIELDS.items()}
    arguments.update({("Query", "activities", to_camel_case(name)): pair
                      for name, pair in ACTIVITY_ARGUMENT_FIELDS.items()})
    arguments[("Query", "checkForeigner", "documentNumber")] = CHECK_FOREIGNER_FIELD
    arguments.update({("Subscription", feed, name): pair
                      for (feed, name), pair in FEED_ARGUMENT_FIELDS.items()})
    return ArgumentGuards(
        arguments=arguments, input_fields=inputs,
        enum_values={("ForeignerOrder", order.name): pair
                     for order, pair in FOREIGNER_ORDER_FIELDS.items()})


def schema_fields(schema: strawberry.federation.Schema) -> dict[str, list[str]]:
    """Every object type and its fields, as GraphQL names: what the policy must cover."""
    fields: dict[str, list[str]] = {}
    for name, graphql_type in schema._schema.type_map.items():
        if name.startswith("__") or not isinstance(graphql_type, GraphQLObjectType):
            continue
        fields[name] = sorted(graphql_type.fields)
    return fields
