"""The access trail at the door (SPEC rule 6): the stated purpose in, the entries out.

A request states its purpose in the `Sisada-Purpose` header. What a role may read of the
recorded fields depends on it (`AccessView`): without a purpose the role may state, the
recorded fields are withheld (PURPOSE_REQUIRED, schema.privacy) and never fetched. After
an operation executed, the recorded values its response carries (schema.trail) become one
batch of entries (one per record type and field set, listing its records), written before
the response leaves; when the batch cannot be written, exactly those values are blanked
(ACCESS_TRAIL_UNAVAILABLE) and the rest of the response is kept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, GraphQLError, parse
from strawberry.types import ExecutionResult

from gateway.logging import log
from gateway.trail_thread import TrailThread
from policies import RoleAccess
from resolvers.trail import TrailEntry, TrailWriteError
from schema.context import GraphQLContext
from schema.identity import UPSTREAM_FIELDS
from schema.trail import TrailReads, begin_reads, recorded_keys, scrub

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
    recorded ones when no purpose it may state was given (those are `blocked`). Recorded
    fields the registry answers are noted where their values arrive; the rest by the
    field hook (`hook_recorded`)."""

    readable: Mapping[str, frozenset[str]]
    recorded: frozenset[tuple[str, str]]
    blocked: frozenset[tuple[str, str]]
    hook_recorded: frozenset[tuple[str, str]] = frozenset()


# Fields whose values arrive from the registry (schema.identity), noted there.
_SOURCE_NOTED = frozenset((t, f) for t, fields in UPSTREAM_FIELDS.items() for f in fields)


def access_view(access: RoleAccess, purpose_allowed: bool, trail_enabled: bool) -> AccessView:
    recorded = access.recorded if trail_enabled else frozenset()
    if purpose_allowed or not access.recorded:
        return AccessView(access.readable, recorded, frozenset(), recorded - _SOURCE_NOTED)
    blocked = access.recorded
    readable = {type_name: frozenset(f for f in fields if (type_name, f) not in blocked)
                for type_name, fields in access.readable.items()}
    return AccessView(readable, frozenset(), blocked)


class TrailWriter:
    """Writes operations' recorded reads, or blanks them when it cannot."""

    def __init__(self, thread: TrailThread, document_key: bytes) -> None:
        # Every write of the process goes through the trail's own thread (trail_thread.py).
        self.thread = thread
        self.timeout = thread.timeout
        # The document's hash is keyed: a reader of the trail can match it against a
        # document the office holds, never recover one (a document may carry a passport
        # number as a literal, and a plain SHA-256 of a template is a short brute force).
        self.document_key = document_key

    def begin(self, context: GraphQLContext, request_data: Any) -> OperationTrail:
        """The trail of one operation about to run (schema.trail notes into it)."""
        return OperationTrail(self, begin_reads(), context, request_data)


class OperationTrail:
    """One operation's entries, written before its response leaves; the response leaves
    only after every write succeeded, else without any recorded value. A page's entries
    are written as soon as its values are noted (`on_page`), on the trail's thread, while
    graphql-core completes the page; the rest when the operation ends."""

    def __init__(self, writer: TrailWriter, reads: TrailReads, context: GraphQLContext,
                 request_data: Any) -> None:
        self.writer = writer
        self.reads = reads
        self.context = context
        self.request_data = request_data
        self._writes: list[asyncio.Future[None]] = []
        reads.on_page = self._write_now

    def _write_now(self) -> None:
        entries = self._entries(self.reads.entries())
        if entries:
            self._writes.append(self.writer.thread.entries(entries))

    def abandon(self) -> None:
        """The operation was stopped and sends no data: nothing more is written. (A page
        already being written stays written: a read recorded that did not leave errs on the
        side the trail is for.)"""
        self.reads.entries()
        for write in self._writes:
            write.add_done_callback(_retrieved)

    async def settle(self, result: ExecutionResult) -> ExecutionResult:
        self._write_now()
        failed: TrailWriteError | None = None
        for write in self._writes:
            try:
                await write
            except TrailWriteError as exc:
                failed = exc
        if failed is None or result.data is None:
            return result
        # Fail closed: no value of a recorded field leaves without its entry.
        log.error("trail.write_failed", request_id=self.context.loaders.request_id,
                  cause=type(failed.__cause__).__name__ if failed.__cause__ else None)
        query = getattr(self.request_data, "query", None) or ""
        keys = recorded_keys(_parsed(query), {f for _t, f in self.context.recorded})
        result.errors = [*(result.errors or []), *scrub(result.data, keys)]
        return result

    def _entries(self, reads: list[tuple[str, tuple[str, ...], list[str]]]
                 ) -> list[TrailEntry]:
        """One entry per record type and field set, listing its records (a page of a
        thousand names is one entry; the trail still answers per record)."""
        if not reads:
            return []
        context, request_data = self.context, self.request_data
        principal = context.principal
        query = getattr(request_data, "query", None) or ""
        document_hash = hmac.new(self.writer.document_key,
                                 query.encode("utf-8", "surrogatepass"),
                                 hashlib.sha256).hexdigest()
        client = getattr(getattr(context.request, "client", None), "host", None)
        now = dt.datetime.now(dt.UTC)
        operation = getattr(request_data, "operation_name", None) or self.reads.operation_name
        return [
            TrailEntry(
                at=now, issuer=principal.issuer or "", subject=principal.subject or "",
                role=principal.role, area=principal.area, office_code=principal.city,
                officer_id=principal.officer_id, record_type=type_name, fields=fields,
                purpose=context.purpose, request_id=context.loaders.request_id,
                operation_name=operation, document_hash=document_hash, client_address=client,
                record_ids=tuple(record_ids))
            for type_name, fields, record_ids in reads
        ]


def _retrieved(write: asyncio.Future[None]) -> None:
    # An abandoned operation's write: its failure has no response left to blank.
    if not write.cancelled():
        write.exception()


def _parsed(query: str) -> DocumentNode | None:
    # Only when a write failed: the document executed, so it parses.
    try:
        return parse(query)
    except GraphQLError:
        return None
