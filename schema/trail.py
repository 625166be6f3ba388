"""What a response reads of recorded fields (SPEC rule 6), gathered while it executes.

Which fields are recorded is policy (trail.polar: `recorded_field`). Fields the registry
answers are noted where their values arrive (schema.identity hands each record its values
and notes them here): a page of a thousand names costs no per-field hook. Any other field
the policy records is noted by the field hook (schema.privacy) as it lets a value through.
The gateway writes one trail entry per record before the response leaves, or, when it
cannot, blanks every value of a recorded field in the response (`scrub`) — nothing else.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from graphql import DocumentNode, FieldNode, GraphQLError, Visitor, visit

from schema.errors import CodedError
from schema.identity import Unavailable

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
    """The recorded values one operation's response carries: per record type and set of
    fields, the records (a page of a thousand names is one group)."""

    __slots__ = ("groups", "on_page", "operation_name")

    def __init__(self) -> None:
        # (type, sorted fields) -> record ids in the order first noted (a dict as a set).
        self.groups: dict[tuple[str, tuple[str, ...]], dict[str, None]] = {}
        # The operation's name as the document gives it (the request may name none).
        self.operation_name: str | None = None
        # Called once a page's reads are noted: the gateway may start writing them while
        # the page's fields are completed (they are written before the response leaves).
        self.on_page: Callable[[], None] | None = None

    def add(self, type_name: str, record_id: str, fields: Iterable[str], info: Any) -> None:
        self.groups.setdefault((type_name, tuple(sorted(set(fields)))), {})[record_id] = None
        self.name_operation(info)

    def name_operation(self, info: Any) -> None:
        if self.operation_name is None and info.operation.name is not None:
            self.operation_name = info.operation.name.value

    def entries(self) -> list[tuple[str, tuple[str, ...], list[str]]]:
        """(type, sorted fields, record ids) per distinct read noted so far, a record in
        one of them only (the union of what it was read of); then no longer pending."""
        groups, self.groups = self.groups, {}
        types = [type_name for type_name, _fields in groups]
        if len(types) == len(set(types)):
            # One set of fields per type: no record can be in two groups.
            return [(t, f, list(ids)) for (t, f), ids in groups.items()]
        fields_of: dict[tuple[str, str], set[str]] = {}
        for (type_name, fields), ids in groups.items():
            for record_id in ids:
                fields_of.setdefault((type_name, record_id), set()).update(fields)
        merged: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for (type_name, record_id), fields_read in fields_of.items():
            merged.setdefault((type_name, tuple(sorted(fields_read))), []).append(record_id)
        return [(t, f, ids) for (t, f), ids in merged.items()]

    def records(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(type, id, sorted fields) per record noted so far, in a stable order; they are
        then no longer pending."""
        return sorted((t, i, f) for t, f, ids in self.entries() for i in ids)

    def __bool__(self) -> bool:
        return bool(self.groups)


def begin_reads() -> TrailReads:
    reads = TrailReads()
    _READS.set(reads)
    return reads


def note_reads(info: Any, type_name: str,
               values_by_record: Iterable[tuple[str, Mapping[str, Any]]], *,
               page: bool = False) -> None:
    """Note, for records about to be sent, the recorded fields whose values are not null.
    `page`: the records of a whole page (their entries may be written at once)."""
    reads = _READS.get()
    recorded_here = sorted(f for t, f in info.context.recorded if t == type_name)
    if reads is None or not recorded_here:
        return
    groups = reads.groups
    key: tuple[str, tuple[str, ...]] | None = None
    ids: dict[str, None] = {}
    for record_id, values in values_by_record:
        sent = tuple(f for f in recorded_here
                     if (value := values.get(f)) is not None and type(value) is not Unavailable)
        if not sent:
            continue
        if key is None or sent != key[1]:
            key = (type_name, sent)
            ids = groups.setdefault(key, {})
        ids[record_id] = None
    if key is not None:
        reads.name_operation(info)
        if page and reads.on_page is not None:
            reads.on_page()


def recorded(value: Any, root: Any, type_name: str, field_name: str, info: Any) -> Any:
    """The field hook's side: `value` as resolved, noted when it is a value. An awaitable
    is noted once it resolves."""
    if inspect.isawaitable(value):
        return _recorded_later(value, root, type_name, field_name, info)
    if value is not None:
        reads = _READS.get()
        if reads is not None:
            reads.add(type_name, str(getattr(root, "id", "")), (field_name,), info)
    return value


async def _recorded_later(value: Awaitable[Any], root: Any, type_name: str, field_name: str,
                          info: Any) -> Any:
    return recorded(await value, root, type_name, field_name, info)


def recorded_keys(document: DocumentNode | None, field_names: Iterable[str]) -> frozenset[str]:
    """Response keys (aliases, or names) the document gives fields of these names: where a
    recorded value can sit in the response. A superset (another type's field of the same
    name counts too): a failed trail blanks more, never less."""
    names = frozenset(field_names)
    keys: set[str] = set()

    class Keys(Visitor):
        def enter_field(self, node: FieldNode, *_args: Any) -> None:
            if node.name.value in names:
                keys.add((node.alias or node.name).value)

    if document is not None:
        visit(document, Keys())
    return frozenset(keys)


def scrub(data: Any, keys: frozenset[str]) -> list[GraphQLError]:
    """Null every non-null value under one of `keys` in a response's data; one error per
    value blanked, at its path."""
    errors: list[GraphQLError] = []

    def walk(node: Any, path: list[str | int]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in keys and value is not None:
                    node[key] = None
                    errors.append(GraphQLError(
                        TRAIL_UNAVAILABLE_MESSAGE, path=[*path, key],
                        extensions=TrailUnavailableError(TRAIL_UNAVAILABLE_MESSAGE).extensions))
                else:
                    walk(value, [*path, key])
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, [*path, index])

    walk(data, [])
    return errors
