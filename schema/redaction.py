"""`redactedFields`: hidden told apart from unknown, in band.

A field the caller may not read resolves to null and is listed in `extensions.redacted`
(schema/privacy.py). Supergraph routers (Apollo Gateway, Hive Gateway, Apollo Router) drop
a subgraph's `extensions`, so behind one a null name could be "hidden" or "not recorded".
Every domain object type therefore carries `redactedFields: [String!]`: the names of its
fields that the caller's role may not read. It is a field like any other — the policy
says who may read it (every role that may read the type) — and it holds no value of any
record, only the role's decision, which the published access matrix already states.

Values withheld per record are listed too, for that record: a location the caller's
precision coarsened away (`areaCode`, `area`) or a free text it withholds (no linking,
SPEC rule 7), and a count below the caller's small-cell threshold. They say no more than
the null beside them does, and tell it apart from a value that is unknown.
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


def redacted_fields(root: Any, info: Ctx) -> list[str] | None:
    """The GraphQL names of this object's fields hidden from the caller, sorted: the fields
    its role may not read, and values withheld from this record. An awaitable when a
    withheld count must be looked up first (graphql-core takes either)."""
    # The path's typename is the object type holding this field (never an interface).
    parent = info.schema._schema.get_type(info.path.typename or "")
    if not isinstance(parent, GraphQLObjectType):
        return None
    hidden = _hidden(parent, info.context.readable.get(parent.name, frozenset()))
    withheld = _placed_withheld(root, info, parent.name)
    minimum = info.context.access.count_cell_minimum
    if minimum is not None and parent.name == "Area" and "foreignerCount" not in hidden:
        return _with_count(root, info, minimum, hidden, withheld)  # type: ignore[return-value]
    return sorted({*hidden, *withheld}) if withheld else list(hidden)


def _placed_withheld(root: Any, info: Ctx, type_name: str) -> set[str]:
    """Location and free text the caller's precision withheld from this record."""
    precision = info.context.access.location_precision.get(type_name)
    if precision is None:
        return set()
    withheld = set()
    if getattr(root, "located_code", "") is None:
        withheld |= {"areaCode", "area"}
    if getattr(root, "free_text", "") is None:
        withheld |= precision.texts
    return withheld


async def _with_count(root: Any, info: Ctx, minimum: int, hidden: tuple[str, ...],
                      withheld: set[str]) -> list[str]:
    count = await info.context.loaders.foreigner_count.load(root.code)
    if count < minimum:
        withheld = {*withheld, "foreignerCount"}
    return sorted({*hidden, *withheld})


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
