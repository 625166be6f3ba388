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
    personsByName(text: String!, first: Int!, after: ID): [Person!]!
        people whose name contains `text` (any case), ordered by id, only ids > `after`
        when given, at most `first` (1 to 5,001) of them: one page of a keyset walk

An `_entities` answer may carry `errors` whose path is `["_entities", i, ...]`: entry i
could not be read, which is not the same as "no such id" (a null entry without error).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

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


# One `entities` result: the selected fields, None (unknown id), or the entry's own error.
EntityResult = dict[str, Any] | None | IdentityUnavailableError


class EntityKey(NamedTuple):
    """One entity to fetch: the registry type and the registry id. A tuple: a page keys
    several dicts by a thousand of them, and a tuple hashes and compares in C."""

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
    ) -> list[EntityResult]:
        """One `_entities` fetch (split into bounded chunks if long), one result per key in
        the order of `keys`:

        - a dict: the fields `selections[key.type_name]` selects (registry field names);
        - None: the registry does not know that id, or the key's type has an empty
          selection (such keys are never asked for);
        - an `IdentityUnavailableError` instance (returned, not raised): the registry
          answered the request but reported an error for this entry, so the record's
          identity is unavailable, not unknown. Each such position holds its own instance.

        The whole call raises `IdentityUnavailableError` when the registry cannot answer
        at all."""
        ...

    async def ids_by_document(self, number: str, request_id: str) -> list[int]:
        """Registry ids of the people holding this passport or permit number."""
        ...

    async def ids_by_name(self, text: str, limit: int, request_id: str) -> list[int]:
        """ALL registry ids of the people whose name contains `text`, in the whole
        registry (whatever office the caller belongs to), ascending; the caller scopes them
        to the rows it may see. Only when the registry holds more than `limit` matches is
        it `LookupTooBroadError(limit)`: the refusal depends on `limit` alone, never on how
        many of the matches the caller may see. The registry client walks `personsByName`
        in pages (`after` = the last id of the previous page), each page its own request."""
        ...


class UnconfiguredRegistry:
    """No registry URL is configured: identity is unavailable, everything else works."""

    async def entities(self, keys: Sequence[EntityKey], selections: Mapping[str, frozenset[str]],
                       request_id: str) -> list[EntityResult]:
        raise IdentityUnavailableError("no registry is configured")

    async def ids_by_document(self, number: str, request_id: str) -> list[int]:
        raise IdentityUnavailableError("no registry is configured")

    async def ids_by_name(self, text: str, limit: int, request_id: str) -> list[int]:
        raise IdentityUnavailableError("no registry is configured")
