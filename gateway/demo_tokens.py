"""Demo tokens: a token per role of the policy, for GraphiQL's role picker (`sisada demo`).

Served at /graphiql/demo-tokens only in demo mode: `SISADA_DEMO_TOKENS` on (`sisada demo`
turns it on), GraphiQL on, the development environment, and tokens verified with the
development key, the key these tokens are signed with. Anywhere else the path does not
exist (404). The roles, their purposes and what their tokens carry are the policy's
(roles.polar, trail.polar); the jurisdictions and officers are picked from the office's
data as `sisada token` picks them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth import mint_dev_token
from gateway.http_guards import error_response
from gateway.logging import log
from gateway.settings import Settings
from policies import Policy
from resolvers.db import DatabaseUnavailableError
from resolvers.models import Area, Officer, Residence
from resolvers.officers import SUPERVISOR

PATH = "/graphiql/demo-tokens"
DEMO_KECAMATAN = "31.74.02"  # Setiabudi: the demo jurisdiction


class Scalars(Protocol):
    """What the pickers read from: an AsyncConnection (the CLI) or a Database (the app)."""

    async def scalar(self, statement: Any) -> Any: ...


async def demo_area(db: Scalars, level: str) -> str | None:
    """The area of `level` inside the demo kecamatan where most foreigners live."""
    if level in ("kecamatan", "city"):
        code = DEMO_KECAMATAN if level == "kecamatan" else DEMO_KECAMATAN.rsplit(".", 1)[0]
        found: str | None = await db.scalar(select(Area.code).where(Area.code == code))
        return found
    column = getattr(Residence, f"{level}_code")
    best: str | None = await db.scalar(
        select(column)
        .where(Residence.valid_to.is_(None), Residence.kecamatan_code == DEMO_KECAMATAN)
        .group_by(column)
        .order_by(func.count().desc(), column)
        .limit(1)
    )
    if best is None:
        best = await db.scalar(
            select(Area.code).where(Area.level == level, Area.code.like(DEMO_KECAMATAN + ".%"))
            .order_by(Area.code).limit(1)
        )
    return best


async def demo_officer(db: Scalars, kind: str) -> int | None:
    """The first officer of `kind` (a supervisor or not)."""
    found: int | None = await db.scalar(
        select(Officer.id).where(Officer.is_supervisor.is_(kind == SUPERVISOR))
        .order_by(Officer.id).limit(1))
    return found


def demo_tokens_served(settings: Settings) -> bool:
    """Demo mode: asked for, GraphiQL on, in development, on the development key."""
    return (settings.demo_tokens and settings.graphiql
            and settings.environment == "development"
            and not (settings.jwt_secret or settings.jwt_public_key or settings.jwks_url))


@dataclass(frozen=True, slots=True)
class DemoClaims:
    area: str | None
    officer_id: int | None


class DemoTokens:
    """The endpoint. Claims are looked up once per role and kept (the demo data does not
    move); tokens are minted per request, so each lives the development token lifetime."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.claims: dict[tuple[str, str | None, str | None], DemoClaims | None] = {}
        self.lock = asyncio.Lock()

    async def respond(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return error_response(405, "demo tokens are read with GET", "METHOD_NOT_ALLOWED",
                                  headers={"allow": "GET"})
        settings: Settings = self.state.settings
        try:
            async with asyncio.timeout(settings.request_timeout_seconds):
                roles = await self.roles()
        except TimeoutError:
            return error_response(503, "the demo tokens took too long", "TIMEOUT")
        except DatabaseUnavailableError:
            return error_response(503, "the database is unavailable", "UNAVAILABLE")
        policy: Policy = self.state.policy.policy
        response = JSONResponse({"anonymousRole": policy.anonymous_role, "roles": roles})
        response.headers["cache-control"] = "no-store"
        return response

    async def roles(self) -> list[dict[str, Any]]:
        loaded = self.state.policy
        policy: Policy = loaded.policy
        settings: Settings = self.state.settings
        found = []
        for role in sorted(policy.roles - {policy.anonymous_role}):
            claims = await self.claims_of(policy, role)
            if claims is None:
                continue  # nothing in the data to pick for it (an empty database)
            access = loaded.compiled.by_role.get(role)
            found.append({
                "role": role, "area": claims.area, "officerId": claims.officer_id,
                "token": mint_dev_token(settings, role, area=claims.area,
                                        officer_id=claims.officer_id),
                "purposes": sorted(access.purposes) if access else [],
                "purposeRequired": bool(access and access.purpose_required),
            })
        return found

    async def claims_of(self, policy: Policy, role: str) -> DemoClaims | None:
        level = (policy.demo_jurisdiction_level(role)
                 if role in policy.jurisdiction_levels else None)
        kind = policy.officer_kinds.get(role)
        key = (role, level, kind)
        async with self.lock:
            if key not in self.claims:
                self.claims[key] = await self._look_up(policy, role, level, kind)
            return self.claims[key]

    async def _look_up(self, policy: Policy, role: str, level: str | None,
                       kind: str | None) -> DemoClaims | None:
        db = self.state.db
        area = officer = None
        if role in policy.jurisdiction_levels:
            area = await demo_area(db, level) if level is not None else None
            if area is None:
                log.warning("demo_tokens.no_area", role=role)
                return None
        if kind is not None:
            officer = await demo_officer(db, kind)
            if officer is None:
                log.warning("demo_tokens.no_officer", role=role)
                return None
        return DemoClaims(area=area, officer_id=officer)


def demo_token_routes(state: Any) -> list[Route]:
    """The endpoint's route in demo mode; no route (a 404) otherwise."""
    if not demo_tokens_served(state.settings):
        return []
    # Every method reaches it, so that others get a JSON 405 like /graphql's.
    return [Route(PATH, DemoTokens(state).respond,
                  methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])]
