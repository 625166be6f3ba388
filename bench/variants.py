"""The four variants of the benchmark, each an ASGI app over the same database.

- sisada:    the real gateway with the real policy (field decisions and row filters
             compiled once; one set lookup per field, row filters in the SQL).
- no-policy: the same schema and resolvers with authorization switched off (every field
             readable, every row in scope): the ceiling for this stack.
- naive:     authorization the way a user writes it by default with Oso. For every object
             the executor resolves fields on, the policy's resource view of that object
             (policies.resources) is built once from the Strawberry object, Oso is asked
             once whether the row may be read (`is_allowed`, `Policy.allow_row`), and then
             once per field (`allow_field(actor, "read", record, field)`, the object form,
             `Policy.allow_record_field`). Objects without a resource class (connections,
             PageInfo, Residence, StayPermit, CountBucket, …) and root types are asked the
             string form, `allow_field(actor, "read", "Type", field)`, once per field per
             object; so are Report and Officer, whose Strawberry objects lack the fields
             their row rules compare (see VIEWS). The SQL row filters stay as in sisada,
             so every variant returns the same rows.
- floor:     the same rows fetched with one SQL query and serialized with orjson; no GraphQL.
             Identity is not in the office database: for a caller who may read names
             (immigration), the page's names come from the registry in one `_entities`
             request (the document the gateway sends), so the floor is one SQL statement +
             one upstream request + orjson; for police the names are null and the registry
             is not called, as in the gateway.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
from graphql import GraphQLResolveInfo
from sqlalchemy import and_, select, true
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.app import create_app
from gateway.registry.queries import entities_document
from gateway.settings import Settings
from policies import Policy, RoleAccess
from policies import resources as views
from policies.area_codes import ancestors, located_codes
from policies.loader import AREA_LEVELS
from policies.row_filters import ALL_ROWS
from resolvers.db import Database, create_engine
from resolvers.identity import PERSON
from resolvers.models import Area, Foreigner, StayPermit
from resolvers.scopes import CURRENT_RESIDENCE, foreigners_living_in
from schema.errors import forbidden_field
from schema.privacy import ROOT_TYPES, FieldPolicy

VARIANTS = ("sisada", "no-policy", "naive", "floor")


# -- naive: the policy's view of a Strawberry object, built once per object ------------


def _foreigner_view(root: Any) -> views.Foreigner:
    # A foreigner lies where the current residence lies; the Strawberry Residence carries
    # the codes from the kecamatan down, the city is the kecamatan code's first ancestor.
    residence = root.residence
    if residence is None:
        return views.Foreigner(id=root.db_id)
    kecamatan = residence.kecamatan_code
    return views.Foreigner(
        id=root.db_id,
        city_code=ancestors(kecamatan)[0] if kecamatan else None,
        kecamatan_code=kecamatan,
        kelurahan_code=residence.kelurahan_code,
        rw_code=residence.rw_code,
        rt_code=residence.rt_code,
    )


def _activity_view(root: Any) -> views.Activity:
    # `area_code` is the smallest area recorded (RT, else RW, else kelurahan); the codes of
    # the levels above are its ancestors, those below it are NULL in the row as well.
    codes = located_codes(root.area_code) if root.area_code else {}
    return views.Activity(id=int(root.id), officer_id=root.officer_id,
                          joint_operation=bool(root.joint_operation), **codes)


def _area_view(root: Any) -> views.Area:
    # An area lies inside itself: its code at its own level, its ancestors above.
    return views.Area(code=root.code, level=root.level, **located_codes(root.code))


# GraphQL type → builder of its resource view. Report and Officer are missing on purpose:
# the Strawberry Report does not carry `submitted_by` and the Strawberry Officer does not
# carry `office_area_code`, the fields their row rules compare, and neither can be derived
# from what they do carry. For those two types naive falls back to the string form per
# field (what a user would do without reloading the record); the benchmark's queries do
# not reach either type.
VIEWS: dict[str, Callable[[Any], object]] = {
    "Foreigner": _foreigner_view,
    "Activity": _activity_view,
    "Area": _area_view,
}


class NaiveFieldPolicy(FieldPolicy):
    """What a user writes by default with Oso: for every object, build the policy's view
    of it once and ask `is_allowed` once; then ask `allow_field` on the object for every
    field (one Polar evaluation per field per object) while the response is built.

    A row Oso denies has all its fields null (and redacted) without asking per field;
    rows reach this hook already filtered by SQL, so in the benchmark every row is allowed
    and every field of every object is one object-form evaluation. Denials are reported in
    `extensions.redacted` as sisada reports them (FieldPolicy.get_results)."""

    policy: Policy

    def __init__(self) -> None:
        # id(root) → (root, view, row allowed); the root is kept so its id is not reused.
        self.objects: dict[int, tuple[Any, object, bool]] = {}

    def needs_checks(self) -> bool:
        # A naive gateway asks Oso about every field; it has no document-level shortcut.
        return True

    def resolve(self, _next: Callable[..., Any], root: Any, info: GraphQLResolveInfo,
                *args: Any, **kwargs: Any) -> Any:
        type_name, field_name = info.parent_type.name, info.field_name
        if field_name.startswith("__") or type_name.startswith("__"):
            return _next(root, info, *args, **kwargs)
        principal = info.context.principal
        build_view = VIEWS.get(type_name)
        if build_view is None or root is None:
            allowed = self.policy.allow_field(principal, type_name, field_name)
        else:
            seen = self.objects.get(id(root))
            if seen is None:
                view = build_view(root)
                seen = (root, view, self.policy.allow_row(principal, view))
                self.objects[id(root)] = seen
            _root, view, row_allowed = seen
            allowed = row_allowed and self.policy.allow_record_field(principal, view,
                                                                     field_name)
        if allowed:
            return _next(root, info, *args, **kwargs)
        if type_name in ROOT_TYPES:
            raise forbidden_field(type_name, field_name)
        info.context.redacted.add((type_name, field_name))
        return None


# -- no-policy ------------------------------------------------------------------------


def _everything(access: RoleAccess, fields: dict[str, frozenset[str]]) -> RoleAccess:
    """Every field and row readable: no authorization. The access trail stays as the role
    has it (recorded fields, purposes): it is accountability, not authorization, and its
    own cost has a bar of its own (bench/trail.py), so it is on both sides here."""
    every_row = {type_name: ALL_ROWS for type_name in views.RESOURCES}
    return RoleAccess(
        role=access.role,
        readable=fields,
        row_filters={level: every_row for level in AREA_LEVELS},
        count_cell_minimum=None,
        schema_hints=True,
        recorded=access.recorded,
        purposes=access.purposes,
        purpose_required=access.purpose_required,
    )


def build(variant: str, settings: Settings) -> Any:
    if variant == "sisada":
        return create_app(settings)
    if variant == "no-policy":
        return create_app(settings, field_policy=None, access_override=_everything)
    if variant == "naive":
        NaiveFieldPolicy.policy = Policy(settings.policy_dir)
        return create_app(settings, field_policy=NaiveFieldPolicy)
    if variant == "floor":
        return floor_app(settings)
    raise ValueError(f"unknown variant {variant}")


# -- floor ----------------------------------------------------------------------------


# The floor sends what the gateway sends: enum values by their GraphQL names (schema/).
SEX_NAMES = {"M": "MALE", "F": "FEMALE"}


def _enum_name(value: str | None) -> str | None:
    return None if value is None else value.upper()


def floor_app(settings: Settings) -> Starlette:
    """The rows of the foreigner list: one SQL statement, one registry request for the
    names where the caller may read them, straight to JSON."""
    db = Database(create_engine(settings.database_url))
    upstream = httpx.AsyncClient(timeout=60)
    names_query = entities_document({PERSON: ("fullName", "passportNumber")})
    registry_headers = {"authorization": f"Bearer {settings.registry_token}",
                        "content-type": "application/json"}

    async def names(ids: list[int]) -> list[dict[str, Any] | None]:
        if not ids or settings.registry_url is None:
            return [None] * len(ids)
        body = {"query": names_query,
                "variables": {"representations": [{"__typename": PERSON, "id": str(i)}
                                                  for i in ids]}}
        response = await upstream.post(settings.registry_url, content=orjson.dumps(body),
                                       headers=registry_headers)
        response.raise_for_status()
        return orjson.loads(response.content)["data"]["_entities"]

    async def foreigners(request: Request) -> Response:
        limit = int(request.query_params.get("first", "1000"))
        area = request.query_params.get("area")
        # The jurisdiction, as sisada's row filter for police puts it: the current
        # residence lies inside the area; no area is every row (immigration's office city
        # holds every seeded foreigner). Police may not read names: none are fetched.
        scope = foreigners_living_in(area) if area else true()
        statement = (
            select(
                Foreigner.id, Foreigner.nationality, Foreigner.sex,
                StayPermit.permit_type, StayPermit.status, StayPermit.expires_on,
                StayPermit.sponsor_type, CURRENT_RESIDENCE.street_address,
                CURRENT_RESIDENCE.rt_code,
                Area.name.label("area_name"),
            )
            .outerjoin(StayPermit, and_(StayPermit.foreigner_id == Foreigner.id,
                                        StayPermit.is_current.is_(True)))
            .outerjoin(CURRENT_RESIDENCE, and_(CURRENT_RESIDENCE.foreigner_id == Foreigner.id,
                                               CURRENT_RESIDENCE.valid_to.is_(None)))
            .outerjoin(Area, Area.code == CURRENT_RESIDENCE.rt_code)
            .where(scope)
            .order_by(Foreigner.id)
            .limit(limit)
        )
        rows = await db.all(statement)
        people = [None] * len(rows) if area else await names([r["id"] for r in rows])
        nodes = [
            {"id": str(r["id"]), "fullName": p and p.get("fullName"),
             "passportNumber": p and p.get("passportNumber"),
             "nationality": r["nationality"], "sex": SEX_NAMES.get(r["sex"]),
             "permitType": r["permit_type"], "permitStatus": _enum_name(r["status"]),
             "permitExpiresOn": r["expires_on"],
             "sponsorType": _enum_name(r["sponsor_type"]),
             "residence": {"streetAddress": r["street_address"], "areaCode": r["rt_code"],
                           "area": {"name": r["area_name"]}}}
            for r, p in zip(rows, people, strict=True)
        ]
        body = {"data": {"foreigners": {"nodes": nodes}}}
        return Response(orjson.dumps(body), media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await upstream.aclose()
            await db.engine.dispose()

    app = Starlette(routes=[Route("/floor/foreigners", foreigners), Route("/healthz", healthz)],
                    lifespan=lifespan)
    app.state.engine = db.engine
    return app
