"""Federation v2 fields beyond Strawberry's defaults: `_entities` that never mutates its
input, and `_service` that exposes the SDL exactly where introspection is allowed.

`_entities` is one more path to a record: each representation is checked, copied, and
reloaded under the caller's row scope by its type's `resolve_reference`. Strawberry's own
resolver pops `__typename` off the representation it is given; graphql-core hands every
alias of `_entities` the same coerced variable value, so without the copy a second alias
sharing a `representations` variable saw objects without their type.

`_service { sdl }` is the whole schema by another door: with `SISADA_INTROSPECTION=off`
nobody gets it, with `authenticated` only callers with a verified token (a router's
service credential is one) — the same decision as for `__schema`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import FieldNode, GraphQLError, ValidationContext
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension

from schema.errors import BadInputError
from schema.limits import Introspection

# Federation entities and their key field: `_entities` accepts these and nothing else.
ENTITY_KEYS = {"Foreigner": "id", "Area": "code"}

SERVICE_FIELD = "_service"


def checked_representations(representations: list[Any]) -> list[dict[str, Any]]:
    """Fresh copies of valid representations (unknown types or missing keys: bad input)."""
    copies = []
    for representation in representations:
        if not isinstance(representation, dict):
            raise BadInputError("a representation must be an object")
        key = ENTITY_KEYS.get(representation.get("__typename"))
        if key is None:
            raise BadInputError("unknown entity type")
        if not isinstance(representation.get(key), str | int):
            raise BadInputError(f"a representation needs its key field '{key}'")
        copies.append(dict(representation))
    return copies


def service_allowed(mode: Introspection, authenticated: bool) -> bool:
    """May this caller read the SDL? The introspection setting decides (schema.limits)."""
    return mode == "on" or (mode == "authenticated" and authenticated)


class NoServiceRule(ASTValidationRule):
    """Refuses `_service` wherever it is selected (aliases and fragments included)."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.query_type = context.schema.query_type

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        if node.name.value == SERVICE_FIELD and self.context.get_parent_type() is self.query_type:
            self.report_error(GraphQLError(
                "the subgraph schema (_service) is disabled, as introspection is", node,
                extensions={"code": "INTROSPECTION_DISABLED"}))


class ServiceExposure(SchemaExtension):
    """Adds `NoServiceRule` to the validation of every operation of a caller who may not
    introspect; such a document fails validation and nothing of it runs."""

    def __init__(self, mode: Introspection) -> None:
        self.mode = mode

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        authenticated = bool(getattr(context.context, "authenticated", False))
        if not service_allowed(self.mode, authenticated):
            context.validation_rules = (*context.validation_rules, NoServiceRule)
        yield
