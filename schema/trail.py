"""What a response reads of recorded fields (SPEC rule 6), gathered while it executes.

Which fields are recorded is policy (trail.polar: `recorded_field`). The field hook
(schema.privacy) runs for every operation that selects one, and notes each non-null value
it lets through: the record's type and id, the field, and the value's path in the
response. The gateway writes one trail entry per record before the response leaves, or,
when it cannot, blanks exactly those paths (`scrub`) — nothing else of the response.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Iterable, Sequence
from contextvars import ContextVar
from typing import Any

from graphql import GraphQLError

from schema.errors import CodedError

# Recorded values per operation, in a context variable: operations of one batch run
# concurrently in tasks of their own and share a GraphQL context.
_READS: ContextVar[TrailReads | None] = ContextVar("sisada_trail_reads", default=None)


class PurposeRequiredError(CodedError):
    """A recorded field, read without a purpose this role may state."""

    code = "PURPOSE_REQUIRED"


class TrailUnavailableError(CodedError):
    code = "ACCESS_TRAIL_UNAVAILABLE"


PURPOSE_REQUIRED_MESSAGE = ("this field is recorded in the access trail: state a purpose your "
                            "role may state (Sisada-Purpose header)")
TRAIL_UNAVAILABLE_MESSAGE = "the access trail cannot be written; recorded fields are null"


class TrailReads:
    """The recorded values one operation's response carries."""

    __slots__ = ("fields_by_record", "operation_name", "paths")

    def __init__(self) -> None:
        self.fields_by_record: dict[tuple[str, str], set[str]] = {}
        self.paths: list[list[str | int]] = []
        # The operation's name as the document gives it (the request may name none).
        self.operation_name: str | None = None

    def add(self, type_name: str, record_id: str, field_name: str, info: Any) -> None:
        self.fields_by_record.setdefault((type_name, record_id), set()).add(field_name)
        self.paths.append(info.path.as_list())
        if self.operation_name is None and info.operation.name is not None:
            self.operation_name = info.operation.name.value

    def records(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(type, id, sorted fields) per record, in a stable order."""
        return [(t, i, tuple(sorted(f))) for (t, i), f in sorted(self.fields_by_record.items())]

    def __bool__(self) -> bool:
        return bool(self.fields_by_record)


def begin_reads() -> TrailReads:
    reads = TrailReads()
    _READS.set(reads)
    return reads


def current_reads() -> TrailReads | None:
    return _READS.get()


def recorded(value: Any, root: Any, type_name: str, field_name: str, info: Any) -> Any:
    """`value` as resolved, noted when it is a value (None is no read). An awaitable is
    noted once it resolves."""
    if inspect.isawaitable(value):
        return _recorded_later(value, root, type_name, field_name, info)
    if value is not None:
        reads = _READS.get()
        if reads is not None:
            reads.add(type_name, _record_id(root), field_name, info)
    return value


async def _recorded_later(value: Awaitable[Any], root: Any, type_name: str, field_name: str,
                          info: Any) -> Any:
    return recorded(await value, root, type_name, field_name, info)


def _record_id(root: Any) -> str:
    # Every recorded type has an `id` (the drift test of the trail checks it).
    return str(getattr(root, "id", ""))


def scrub(data: Any, paths: Iterable[Sequence[str | int]]) -> list[GraphQLError]:
    """Null the values at `paths` of a response's data; one error per path blanked."""
    errors: list[GraphQLError] = []
    for path in paths:
        parent = data
        for step in path[:-1]:
            parent = parent[step] if parent is not None else None
        if isinstance(parent, dict) and parent.get(path[-1]) is not None:
            parent[path[-1]] = None
            error = TrailUnavailableError(TRAIL_UNAVAILABLE_MESSAGE)
            errors.append(GraphQLError(error.message, path=list(path),
                                       extensions=error.extensions))
    return errors
