"""Identity lives in the central registry, never in the office database.

The registry (the Directorate General's system of record, or the stand-in under
examples/registry) is a Federation v2 subgraph. The office database keys its records by
the registry's ids: a foreigner's id is the registry's `Person` id, a stay permit's id
is the registry's `PermitDocument` id. This module is the seam: resolvers see the registry
through `IdentitySource`; gateway/ satisfies it with an HTTP client.

The wire contract the gateway relies on (and nothing else of the registry):

    type Person @key(fields: "id")         { id: ID!  fullName  passportNumber
                                              birthDate (ISO date)  photoUrl }
    type PermitDocument @key(fields: "id") { id: ID!  number  sponsorName }
    _entities(representations: [_Any!]!)   the Federation entity fetch
    personsByDocument(number: String!): [Person!]!          passport or any permit number
    personsByName(text: String!, first: Int!): [Person!]!   part of the name, any case
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

PERSON = "Person"
PERMIT_DOCUMENT = "PermitDocument"

# The registry's identity fields, per registry type: what an upstream request may select.
REGISTRY_FIELDS: Mapping[str, frozenset[str]] = {
    PERSON: frozenset({"fullName", "passportNumber", "birthDate", "photoUrl"}),
    PERMIT_DOCUMENT: frozenset({"number", "sponsorName"}),
}


class IdentityUnavailableError(Exception):
    """The registry cannot answer now: down, slow, refusing, or the circuit is open.
    The message is safe to show (it never carries identity or a request's content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LookupTooBroadError(Exception):
    """A look-up matched more people than one request may carry (`limit`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} matches")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class EntityKey:
    """One entity to fetch: the registry type and the registry id."""

    type_name: str
    id: int


class IdentitySource(Protocol):
    """The registry as resolvers see it. Every call is an idempotent read; each raises
    `IdentityUnavailableError` when the registry cannot answer."""

    async def entities(
        self,
        keys: Sequence[EntityKey],
        selections: Mapping[str, frozenset[str]],
        request_id: str,
    ) -> list[dict[str, Any] | None]:
        """One `_entities` fetch (split into bounded chunks if long): for each key, the
        fields `selections[key.type_name]` selects (registry field names), or None when the
        registry does not know that id. Only keys of a type with a non-empty selection may
        be asked for."""
        ...

    async def ids_by_document(self, number: str, request_id: str) -> list[int]:
        """Registry ids of the people holding this passport or permit number."""
        ...

    async def ids_by_name(self, text: str, limit: int, request_id: str) -> list[int]:
        """Registry ids of the people whose name contains `text`; more than `limit`
        raises `LookupTooBroadError`."""
        ...


class UnconfiguredRegistry:
    """No registry URL is configured: identity is unavailable, everything else works."""

    async def entities(self, keys: Sequence[EntityKey], selections: Mapping[str, frozenset[str]],
                       request_id: str) -> list[dict[str, Any] | None]:
        raise IdentityUnavailableError("no registry is configured")

    async def ids_by_document(self, number: str, request_id: str) -> list[int]:
        raise IdentityUnavailableError("no registry is configured")

    async def ids_by_name(self, text: str, limit: int, request_id: str) -> list[int]:
        raise IdentityUnavailableError("no registry is configured")
