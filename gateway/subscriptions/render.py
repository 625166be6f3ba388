"""One event, rendered for one group of subscribers: their document executed against it.

The document runs through Strawberry exactly as an HTTP request's does — the field hook,
redaction, location precision, limits, error masking — with the event object as the root
value (a subscription field resolves to its root value). The identity fields it sends
are written to the access trail once per subscriber (who saw them), before the frame is
queued; when the trail cannot be written those values are blanked, as in a query.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import GraphQLError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.logging import log
from policies import Principal
from resolvers.trail import TrailEntry, TrailWriteError
from schema.budget import ExecutionBudget, ExecutionStoppedError
from schema.context import GraphQLContext, build_context
from schema.trail import begin_reads, recorded_keys, scrub

SUBSCRIPTION_ONLY = (OperationType.SUBSCRIPTION,)


# One group of recorded reads: record type, field names, record ids (schema.trail).
Reads = tuple[str, tuple[str, ...], list[str]]


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Who an event is delivered to: for the access trail."""

    principal: Principal
    purpose: str | None
    client: str | None
    # The socket's request id (gateway/request_ids.py): its trail entries carry it.
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """What a subscription's document asks, as the client sent it."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


class Renderer:
    def __init__(self, state: Any) -> None:
        self.state = state

    def context(self, principal: Principal, purpose: str | None) -> GraphQLContext:
        """A fresh request context (loaders, budget) for `principal`, as the HTTP view
        builds one: the same access, the same purpose decision."""
        state, settings = self.state, self.state.settings
        access = state.access_for(principal)
        view = state.view_for(access, purpose)
        budget = ExecutionBudget(settings.max_query_cost, settings.max_response_fields,
                                 settings.request_timeout_seconds, view.readable,
                                 settings.max_response_text_bytes)
        authenticated = principal.role != state.policy.policy.anonymous_role
        return build_context(principal, access, state.db, None, authenticated, budget,
                             identity=state.registry, request_id=uuid.uuid4().hex,
                             readable=view.readable, recorded=view.recorded,
                             hook_recorded=view.hook_recorded, purpose_blocked=view.blocked,
                             purpose=purpose)

    async def execute(self, context: GraphQLContext, selection: Selection,
                      root: Any) -> tuple[ExecutionResult, list[Reads]]:
        """The document against `root`, bounded in time; the recorded reads it made."""
        reads = begin_reads()
        timeout = self.state.settings.request_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                result = await self.state.schema.execute(
                    selection.query, variable_values=selection.variables,
                    context_value=context, root_value=root,
                    operation_name=selection.operation_name,
                    allowed_operation_types=SUBSCRIPTION_ONLY)
        except TimeoutError:
            reads.entries()
            return _error("the event took too long to render and was dropped", "TIMEOUT"), []
        except ExecutionStoppedError as stop:
            reads.entries()
            return _error(stop.message, stop.code), []
        return result, reads.entries()

    async def render(self, principal: Principal, purpose: str | None, selection: Selection,
                     root: Any, subscribers: Sequence[Subscriber]) -> str:
        """The `next` payload (JSON text) for every subscriber of one group."""
        payload, _recorded = await self.render_recorded(principal, purpose, selection, root,
                                                        subscribers)
        return payload

    async def render_recorded(self, principal: Principal, purpose: str | None,
                              selection: Selection, root: Any,
                              subscribers: Sequence[Subscriber]) -> tuple[str, bool]:
        """`render`, and whether the payload carries recorded (trail) values: such a
        payload is for `subscribers` alone, whose reads were just written."""
        context = self.context(principal, purpose)
        result, reads = await self.execute(context, selection, root)
        if reads:
            result = await self._recorded(result, reads, subscribers, selection, context)
        return payload_json(result), bool(reads)

    async def _recorded(self, result: ExecutionResult,
                        reads: list[Reads],
                        subscribers: Sequence[Subscriber], selection: Selection,
                        context: GraphQLContext) -> ExecutionResult:
        trail = self.state.trail
        document_hash = hmac.new(trail.document_key,
                                 selection.query.encode("utf-8", "surrogatepass"),
                                 hashlib.sha256).hexdigest()
        now = dt.datetime.now(dt.UTC)
        # As a query's trail (gateway/access_trail.py): per subscriber, one entry per record
        # type and field set, listing its records.
        entries = [
            TrailEntry(at=now, issuer=s.principal.issuer or "", subject=s.principal.subject or "",
                       role=s.principal.role, area=s.principal.area,
                       office_code=s.principal.city, officer_id=s.principal.officer_id,
                       record_type=type_name, fields=fields, purpose=s.purpose,
                       request_id=s.request_id or context.loaders.request_id,
                       operation_name=selection.operation_name, document_hash=document_hash,
                       client_address=s.client, record_ids=tuple(record_ids))
            for s in subscribers for type_name, fields, record_ids in reads
        ]
        try:
            await trail.thread.entries(entries)
        except TrailWriteError as exc:
            # Fail closed: no recorded value leaves without its entry (SPEC rule 6).
            log.error("trail.write_failed", request_id=context.loaders.request_id,
                      cause=type(exc.__cause__).__name__ if exc.__cause__ else None)
            if result.data is not None:
                from graphql import parse

                keys = recorded_keys(parse(selection.query), {f for _t, f in context.recorded})
                result.errors = [*(result.errors or []), *scrub(result.data, keys)]
        return result


def payload_json(result: ExecutionResult) -> str:
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return orjson.dumps(payload).decode()


def _error(message: str, code: str) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": code})])
