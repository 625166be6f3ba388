"""Persisted operations on the request path: hashes become documents, and allow-list-only
clients run their registered documents only.

`PersistedOperationsMiddleware` sits behind authentication and in front of the rate
limiter, so that limits count what a hash stands for (thirty `reportStatus` behind one
hash are thirty guesses). Per operation of a request (a batch resolves each on its own):

- `extensions.persistedQuery = {version: 1, sha256Hash: H}` without a query: the document
  registered for the caller's client under H, else the one the caller itself stored in
  the APQ store (its own namespace: gateway/persisted/apq.namespace_of), else the error
  `PERSISTED_QUERY_NOT_FOUND` (message `PersistedQueryNotFound`, HTTP 200: Apollo's
  clients then send the document with its hash). What another principal stored answers
  exactly like a hash nobody sent: the store is no oracle of others' queries;
- with a query: H must be the query's SHA-256 (else the whole request is a 400
  `PERSISTED_QUERY_HASH_MISMATCH`, before anything runs); the document runs as sent and,
  once it has run (parsed, validated, within the limits), is stored under H in the
  caller's namespace;
- APQ off (`SISADA_APQ=off`): `PERSISTED_QUERY_NOT_SUPPORTED`, as Apollo Server answers.

A client configured allow-list-only (`sisada operations mode`) runs a registered document,
named by its hash or sent verbatim, and nothing else: `OPERATION_NOT_ALLOWED`, or
`PERSISTED_QUERY_NOT_FOUND` for a hash not registered for it; it cannot register through
APQ. A looked-up document then goes through everything a sent one does: document size,
depth, cost, aliases, tokens, the policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from gateway.http_guards import (
    GRAPHQL_REQUEST,
    ASGIApp,
    Receive,
    RequestRejectedError,
    Scope,
    Send,
    StrawberryHTTPException,
    client_address,
)
from gateway.persisted.allow_list import AllowLists, AllowListUnavailableError
from gateway.persisted.apq import ApqStore, apq_store, namespace_of
from gateway.persisted.names import document_hash
from gateway.settings import Settings
from policies import Principal
from resolvers.db import Database
from resolvers.operations import ClientOperations

# Where the middleware leaves each operation's resolution for the GraphQL view.
PERSISTED = "sisada.persisted"

NOT_FOUND = ("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
NOT_SUPPORTED = ("PERSISTED_QUERY_NOT_SUPPORTED", "PersistedQueryNotSupported")
NOT_ALLOWED = ("OPERATION_NOT_ALLOWED",
               "this client may run its registered operations only")


@dataclass(frozen=True, slots=True)
class Resolution:
    """One operation after the persisted-operations step: the document to run, or why it
    does not run; and the caller's namespace and the hash to store the document under once
    it has run."""

    query: str | None
    refusal: tuple[str, str] | None = None
    register: tuple[str, str] | None = None


@dataclass
class PersistedRequestData(GraphQLRequestData):
    resolution: Resolution | None = field(default=None)


class PersistedOperations:
    """The process's APQ store and allow-lists, and what a request's operations resolve to."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.apq_enabled = settings.apq == "on"
        self.store: ApqStore = apq_store(settings)
        self.allow_lists = AllowLists(db, settings.operations_cache_seconds)
        self.max_document_bytes = settings.max_document_bytes
        self.max_batch_operations = settings.max_batch_operations

    async def close(self) -> None:
        await self.store.close()

    async def resolve(self, principal: Principal, operations: Sequence[Mapping[str, Any]],
                      address: str) -> list[Resolution]:
        """Each operation's resolution; raises `RequestRejectedError` for what refuses the
        whole request (a malformed persistedQuery, a hash that does not match its query, a
        client whose allow-list cannot be read)."""
        if len(operations) > self.max_batch_operations:
            # Refused as Strawberry would, before a look-up per operation of a flood.
            raise _bad_request("Too many operations")
        client = await self._client(principal)
        namespace = namespace_of(principal, address)
        return [await self._resolve(operation, client, namespace) for operation in operations]

    async def _client(self, principal: Principal) -> ClientOperations | None:
        if principal.client is None:
            return None
        try:
            return await self.allow_lists.for_client(principal.client)
        except AllowListUnavailableError as exc:
            raise RequestRejectedError(503, "the registered operations cannot be read; "
                                            "try again shortly", "UNAVAILABLE") from exc

    async def _resolve(self, operation: Mapping[str, Any], client: ClientOperations | None,
                       namespace: str) -> Resolution:
        query = operation.get("query")
        locked = client is not None and client.allow_list_only
        wanted = _persisted_hash(operation.get("extensions"))
        if wanted is None:
            if locked and query is not None and document_hash(query) not in client.documents:
                return Resolution(None, NOT_ALLOWED)
            return Resolution(query)
        if query is not None:
            if document_hash(query) != wanted:
                raise RequestRejectedError(400, "provided sha does not match query",
                                           "PERSISTED_QUERY_HASH_MISMATCH")
            if client is not None and wanted in client.documents:
                return Resolution(query)
            if locked:
                return Resolution(None, NOT_ALLOWED)
            if not self.apq_enabled:
                return Resolution(None, NOT_SUPPORTED)
            fits = len(query.encode("utf-8", "surrogatepass")) <= self.max_document_bytes
            return Resolution(query, register=(namespace, wanted) if fits else None)
        if client is not None and wanted in client.documents:
            return Resolution(client.documents[wanted])
        if locked:
            return Resolution(None, NOT_FOUND)
        if not self.apq_enabled:
            return Resolution(None, NOT_SUPPORTED)
        document = await self.store.get(namespace, wanted)
        return Resolution(None, NOT_FOUND) if document is None else Resolution(document)

    async def remember(self, request_data: Any, result: ExecutionResult) -> None:
        """Store a document sent with its hash once it has run (it parsed, validated and
        kept within the limits: only then is there data)."""
        resolution = getattr(request_data, "resolution", None)
        if (resolution is not None and resolution.register is not None
                and resolution.query is not None and result.data is not None):
            await self.store.put(*resolution.register, resolution.query)

    async def subscription_errors(self, principal: Principal, query: str
                                  ) -> list[dict[str, Any]] | None:
        """An allow-list-only client subscribes with a registered document only (sent
        verbatim: hashes are not looked up over WebSocket)."""
        if principal.client is None:
            return None
        try:
            client = await self.allow_lists.for_client(principal.client)
        except AllowListUnavailableError:
            return [{"message": "the registered operations cannot be read; try again "
                                "shortly", "extensions": {"code": "UNAVAILABLE"}}]
        if client is None or not client.allow_list_only:
            return None
        if document_hash(query) in client.documents:
            return None
        code, message = NOT_ALLOWED
        return [{"message": message, "extensions": {"code": code}}]


def _persisted_hash(extensions: object) -> str | None:
    """The hash an operation names, or None when it names none; a persistedQuery that is
    not Apollo's version 1 with a SHA-256 is refused."""
    if not isinstance(extensions, dict) or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, dict):
        raise _bad_request("`extensions.persistedQuery` must be an object")
    if persisted.get("version") != 1:
        raise _bad_request("Unsupported persisted query version")
    wanted = persisted.get("sha256Hash")
    if not isinstance(wanted, str) or len(wanted) != 64:
        raise _bad_request("`extensions.persistedQuery.sha256Hash` must be a SHA-256 in hex")
    wanted = wanted.lower()
    if not all(c in "0123456789abcdef" for c in wanted):
        raise _bad_request("`extensions.persistedQuery.sha256Hash` must be a SHA-256 in hex")
    return wanted


def _bad_request(message: str) -> RequestRejectedError:
    return RequestRejectedError(400, message, "BAD_REQUEST")


def _needs_resolving(principal: Principal, operations: Sequence[Mapping[str, Any]]) -> bool:
    if principal.client is not None:
        return True
    for operation in operations:
        extensions = operation.get("extensions")
        if isinstance(extensions, dict) and "persistedQuery" in extensions:
            return True
    return False


class PersistedOperationsMiddleware:
    """ASGI: resolves the vetted operations (`GRAPHQL_REQUEST`) in place, and leaves the
    resolutions for the GraphQL view (`PERSISTED`). Requests without a persistedQuery from
    callers without a client claim pass with two dictionary look-ups per operation."""

    def __init__(self, app: ASGIApp, operations: PersistedOperations) -> None:
        self.app = app
        self.operations = operations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        operations = scope.get(GRAPHQL_REQUEST)
        principal: Principal | None = scope.get("sisada.principal")
        if (scope["type"] != "http" or not operations or principal is None
                or not _needs_resolving(principal, operations)):
            await self.app(scope, receive, send)
            return
        try:
            resolutions = await self.operations.resolve(principal, operations,
                                                        client_address(scope))
        except RequestRejectedError as exc:
            await exc.response()(scope, receive, send)
            return
        scope[PERSISTED] = resolutions
        scope[GRAPHQL_REQUEST] = [{**operation, "query": resolution.query}
                                  for operation, resolution in zip(operations, resolutions,
                                                                   strict=True)]
        # A miss is never cached (Apollo Server marks it `private, no-cache`): like every
        # /graphql answer it carries `no-store` (gateway/app.py, SisadaGraphQL.run).
        await self.app(scope, receive, send)


def resolved_request_data(scope: Mapping[str, Any], request_data: Any) -> Any:
    """Strawberry's parsed operations with their resolved documents (the body Strawberry
    parsed is the one HttpGuard vetted, so the operations line up one for one)."""
    resolutions: list[Resolution] | None = scope.get(PERSISTED)
    if resolutions is None:
        return request_data
    items = request_data if isinstance(request_data, list) else [request_data]
    if len(items) != len(resolutions):
        raise StrawberryHTTPException(400, "the request changed while it was read")
    resolved = [PersistedRequestData(query=resolution.query, variables=item.variables,
                                     operation_name=item.operation_name,
                                     extensions=item.extensions, protocol=item.protocol,
                                     resolution=resolution)
                for item, resolution in zip(items, resolutions, strict=True)]
    return resolved if isinstance(request_data, list) else resolved[0]


def refusal_of(request_data: Any) -> tuple[str, str] | None:
    resolution = getattr(request_data, "resolution", None)
    return None if resolution is None else resolution.refusal
