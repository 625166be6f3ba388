"""The access trail at the door (SPEC rule 6): the stated purpose in, the entries out.

A request states its purpose in the `Sisada-Purpose` header. What a role may read of the
recorded fields depends on it (`AccessView`): without a purpose the role may state, the
recorded fields are withheld (PURPOSE_REQUIRED, schema.privacy) and never fetched. After
an operation executed, the recorded values its response carries (schema.trail) become one
batch of entries, written before the response leaves; when the batch cannot be written,
exactly those values are blanked (ACCESS_TRAIL_UNAVAILABLE) and the rest of the response
is kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strawberry.types import ExecutionResult

from gateway.logging import log
from policies import RoleAccess
from resolvers.db import Database
from resolvers.trail import TrailRecord, TrailWriteError, append_records
from schema.context import GraphQLContext
from schema.trail import TrailReads, scrub

PURPOSE_HEADER = "sisada-purpose"
# Purpose names as the policy writes them; anything else names no purpose a role may state.
_PURPOSE = re.compile(r"[a-z][a-z0-9_]{0,63}")
UNKNOWN_PURPOSE = "(unknown)"


def stated_purpose(value: str | None) -> str | None:
    """The purpose a request states: None when it states none; a value that cannot be a
    purpose's name is kept as UNKNOWN_PURPOSE (stated, and no role may state it)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    return value if _PURPOSE.fullmatch(value) else UNKNOWN_PURPOSE


@dataclass(frozen=True, slots=True)
class AccessView:
    """What a role reads under one purpose decision: its readable fields, minus the
    recorded ones when no purpose it may state was given (those are `blocked`)."""

    readable: Mapping[str, frozenset[str]]
    recorded: frozenset[tuple[str, str]]
    blocked: frozenset[tuple[str, str]]


def access_view(access: RoleAccess, purpose_allowed: bool, trail_enabled: bool) -> AccessView:
    recorded = access.recorded if trail_enabled else frozenset()
    if purpose_allowed or not access.recorded:
        return AccessView(access.readable, recorded, frozenset())
    blocked = access.recorded
    readable = {type_name: frozenset(f for f in fields if (type_name, f) not in blocked)
                for type_name, fields in access.readable.items()}
    return AccessView(readable, frozenset(), blocked)


class TrailWriter:
    """Writes one operation's recorded reads, or blanks them when it cannot."""

    def __init__(self, db: Database, timeout: float) -> None:
        self.db = db
        self.timeout = timeout

    async def settle(self, result: ExecutionResult, reads: TrailReads,
                     context: GraphQLContext, request_data: Any) -> ExecutionResult:
        if not reads or result.data is None:
            return result
        try:
            await append_records(self.db, self._records(reads, context, request_data),
                                 timeout=self.timeout)
        except TrailWriteError as exc:
            # Fail closed: no value of a recorded field leaves without its entry.
            log.error("trail.write_failed", request_id=context.loaders.request_id,
                      error=str(exc))
            errors = scrub(result.data, reads.paths)
            result.errors = [*(result.errors or []), *errors]
        return result

    def _records(self, reads: TrailReads, context: GraphQLContext,
                 request_data: Any) -> list[TrailRecord]:
        principal = context.principal
        query = getattr(request_data, "query", None) or ""
        document_hash = hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest()
        client = getattr(getattr(context.request, "client", None), "host", None)
        now = dt.datetime.now(dt.UTC)
        return [
            TrailRecord(
                at=now, issuer=principal.issuer or "", subject=principal.subject or "",
                role=principal.role, area=principal.area, office_code=principal.city,
                officer_id=principal.officer_id, record_type=type_name, record_id=record_id,
                fields=fields, purpose=context.purpose, request_id=context.loaders.request_id,
                operation_name=(getattr(request_data, "operation_name", None)
                                or reads.operation_name),
                document_hash=document_hash, client_address=client)
            for type_name, record_id, fields in reads.records()
        ]
