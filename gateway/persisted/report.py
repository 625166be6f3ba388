"""What registering a document means: it is checked as the gateway would check it when
sent (size, tokens, syntax, validation against the schema, depth, cost, aliases), and
read against the compiled policy, role by role: which of its root fields that role is
refused (`FORBIDDEN`), which of its fields come back null (redacted), and which it reads
into the access trail."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import strawberry
from graphql import GraphQLError, OperationDefinitionNode, parse, specified_rules, validate
from graphql.validation import NoSchemaIntrospectionCustomRule

from gateway.persisted.names import document_hash
from gateway.settings import Settings
from policies import CompiledPolicy
from schema.limits import QueryLimits, limits_rule, without_suggestions
from schema.privacy import ROOT_TYPES, selected_fields


class DocumentError(Exception):
    """The document would be refused by the gateway; `message` says why, in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class CheckedDocument:
    document: str
    sha256: str
    operation_names: tuple[str, ...]
    # Every (type, field) the document can execute (introspection aside).
    selected: frozenset[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class RoleReading:
    role: str
    forbidden: tuple[str, ...]
    redacted: tuple[str, ...]
    recorded: tuple[str, ...]


def document_limits(settings: Settings) -> QueryLimits:
    return QueryLimits(max_depth=settings.max_query_depth, max_cost=settings.max_query_cost,
                       max_aliases=settings.max_aliases, max_tokens=settings.max_tokens,
                       introspection=settings.introspection)


def check_document(document: str, schema: strawberry.federation.Schema,
                   settings: Settings) -> CheckedDocument:
    size = len(document.encode("utf-8", "surrogatepass"))
    if size > settings.max_document_bytes:
        raise DocumentError(f"the document is {size:,} bytes, more than "
                            f"SISADA_MAX_DOCUMENT_BYTES ({settings.max_document_bytes:,})")
    limits = document_limits(settings)
    try:
        parsed = parse(document, max_tokens=limits.max_tokens)
    except GraphQLError as exc:
        raise DocumentError(f"not a GraphQL document: {_described(exc)}") from exc
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations:
        raise DocumentError("the document holds no operation")
    rules = [*specified_rules, limits_rule(limits)]
    if settings.introspection == "off":
        rules.append(NoSchemaIntrospectionCustomRule)
    errors = validate(schema._schema, parsed, rules)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise DocumentError(f"the gateway would refuse it: {_described(errors[0])}{more}")
    names = tuple(op.name.value if op.name else "(anonymous)" for op in operations)
    return CheckedDocument(document=document, sha256=document_hash(document),
                           operation_names=names,
                           selected=selected_fields(schema._schema, document, parsed))


def readings(compiled: CompiledPolicy, selected: Iterable[tuple[str, str]]
             ) -> list[RoleReading]:
    """Per role of the policy, in name order: what the document would meet."""
    pairs = sorted(selected)
    result = []
    for role in sorted(compiled.by_role):
        access = compiled.by_role[role]
        forbidden, redacted, recorded = [], [], []
        for type_name, field_name in pairs:
            name = f"{type_name}.{field_name}"
            if not access.may_read(type_name, field_name):
                (forbidden if type_name in ROOT_TYPES else redacted).append(name)
            elif (type_name, field_name) in access.recorded:
                recorded.append(name)
        result.append(RoleReading(role, tuple(forbidden), tuple(redacted), tuple(recorded)))
    return result


def _described(error: GraphQLError) -> str:
    message = without_suggestions(error.message)
    code = (error.extensions or {}).get("code")
    where = (f" (line {error.locations[0].line}, column {error.locations[0].column})"
             if error.locations else "")
    return f"{message}{where}" + (f" [{code}]" if code else "")
