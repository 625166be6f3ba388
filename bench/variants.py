"""The four variants of the benchmark, each an ASGI app over the same database.

- sisada:    the real gateway with the real policy.
- no-policy: the same schema and resolvers with authorization switched off (every field
             readable, every row in scope): the ceiling for this stack.
- naive:     authorization the way a user writes it by default — one Oso evaluation
             (`allow_field`) per field per object.
- floor:     the same rows fetched with one SQL query and serialized with orjson; no GraphQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from graphql import GraphQLResolveInfo
from sqlalchemy import and_, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.extensions import SchemaExtension

from gateway.app import create_app
from gateway.settings import Settings
from policies import Policy, Principal, RoleAccess
from resolvers.db import Database, create_engine
from resolvers.models import Area, Foreigner, StayPermit
from resolvers.scopes import CURRENT_RESIDENCE, scope_condition
from schema.errors import forbidden_field
from schema.privacy import ROOT_TYPES

VARIANTS = ("sisada", "no-policy", "naive", "floor")


class NaiveFieldPolicy(SchemaExtension):
    """What a user writes by default: ask Oso about every object (its row) and every field
    of it, one Polar evaluation each, while the response is built."""

    policy: Policy

    def __init__(self) -> None:
        self.seen: set[int] = set()

    def resolve(self, _next: Callable[..., Any], root: Any, info: GraphQLResolveInfo,
                *args: Any, **kwargs: Any) -> Any:
        type_name, field_name = info.parent_type.name, info.field_name
        if field_name.startswith("__") or type_name.startswith("__"):
            return _next(root, info, *args, **kwargs)
        principal = info.context.principal
        if root is not None and id(root) not in self.seen:
            self.seen.add(id(root))
            self.policy.row_scopes(principal, type_name)  # the per-object is_allowed
        if self.policy.allow_field(principal, type_name, field_name):
            return _next(root, info, *args, **kwargs)
        if type_name in ROOT_TYPES:
            raise forbidden_field(type_name, field_name)
        info.context.redacted.add((type_name, field_name))
        return None


def _everything(access: RoleAccess, fields: dict[str, frozenset[str]]) -> RoleAccess:
    return RoleAccess(
        role=access.role,
        readable=fields,
        scopes={type_name: frozenset({"all"}) for type_name in fields},
        count_cell_minimum=None,
        schema_hints=True,
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


def floor_app(settings: Settings) -> Starlette:
    """The rows of the foreigner list, one SQL statement, straight to JSON."""
    db = Database(create_engine(settings.database_url))

    async def foreigners(request: Request) -> Response:
        limit = int(request.query_params.get("first", "1000"))
        area = request.query_params.get("area")
        principal = Principal(role="floor", area=area)
        scope = scope_condition("Foreigner", frozenset({"jurisdiction"} if area else {"all"}),
                                principal)
        statement = (
            select(
                Foreigner.id, Foreigner.full_name, Foreigner.passport_number,
                Foreigner.nationality, Foreigner.sex, Foreigner.birth_date,
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
        nodes = [
            {"id": str(r["id"]), "fullName": r["full_name"], "passportNumber": r["passport_number"],
             "nationality": r["nationality"], "sex": r["sex"], "birthDate": r["birth_date"],
             "permitType": r["permit_type"], "permitStatus": r["status"],
             "permitExpiresOn": r["expires_on"], "sponsorType": r["sponsor_type"],
             "residence": {"streetAddress": r["street_address"], "areaCode": r["rt_code"],
                           "area": {"name": r["area_name"]}}}
            for r in rows
        ]
        body = {"data": {"foreigners": {"nodes": nodes}}}
        return Response(orjson.dumps(body), media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    app = Starlette(routes=[Route("/floor/foreigners", foreigners), Route("/healthz", healthz)])
    app.state.engine = db.engine
    return app
