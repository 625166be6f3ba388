"""`redactedFields`: hidden told apart from unknown, in band.

A field the caller may not read resolves to null and is listed in `extensions.redacted`
(schema/privacy.py). Supergraph routers (Apollo Gateway, Hive Gateway, Apollo Router) drop
a subgraph's `extensions`, so behind one a null name could be "hidden" or "not recorded".
Every domain object type therefore carries `redactedFields: [String!]`: the names of its
fields that the caller's role may not read. It is a field like any other — the policy
says who may read it (every role that may read the type) — and it holds no value of any
record, only the role's decision, which the published access matrix already states.

Values withheld per record (a suppressed small count, a coarsened location) are listed in
`extensions.redacted` only: whether one is withheld depends on the record.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import strawberry
from graphql import GraphQLObjectType

from schema.common import Ctx
from schema.cost import bounded

REDACTED_FIELDS = "redactedFields"
# The bound of the list for the cost estimate: more than any domain type has fields
# (tests/schema/test_redaction.py holds every type to it).
MAX_TYPE_FIELDS = 40


def redacted_fields(info: Ctx) -> list[str] | None:
    """The GraphQL names of this type's fields the caller may not read, sorted."""
    # The path's typename is the object type holding this field (never an interface).
    parent = info.schema._schema.get_type(info.path.typename or "")
    if not isinstance(parent, GraphQLObjectType):
        return None
    return list(_hidden(parent, info.context.readable.get(parent.name, frozenset())))


@lru_cache(maxsize=256)
def _hidden(parent: GraphQLObjectType, readable: frozenset[str]) -> tuple[str, ...]:
    # One answer per (type, role): the fields of a type and a role's readable set are
    # fixed while the schema and the policy are (a reloaded policy makes new sets).
    return tuple(sorted(name for name in parent.fields
                        if name not in readable and name != REDACTED_FIELDS))


def redacted_fields_field() -> Any:
    """The declaration of `redactedFields` on a domain type (one line in its class)."""
    return strawberry.field(
        resolver=redacted_fields, metadata=bounded(MAX_TYPE_FIELDS),
        description="Fields of this object that you may not read: they are null because "
                    "they are hidden from you, not because they are unknown.")
