"""Federation v2 fields beyond Strawberry's defaults: `_entities` that never mutates its
input, and `_service` that exposes the SDL exactly where introspection is allowed.

`_entities` is one more path to a record: each representation is checked, copied, and
reloaded under the caller's row scope by its type's `resolve_reference`; a bad one fails
its own entry (null, one BAD_USER_INPUT error at `["_entities", i]`), never its batch.
Strawberry's own resolver pops `__typename` off the representation it is given;
graphql-core hands every alias of `_entities` the same coerced variable value, so without
the copy a second alias sharing a `representations` variable saw objects without their type.

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

# Federation entities, their key field and the JSON types that field may have: `_entities`
# accepts these and nothing else. (A bool is an int in Python; it is refused by name.)
ENTITY_KEYS: dict[str, tuple[str, tuple[type, ...]]] = {
    "Foreigner": ("id", (str, int)),
    "Area": ("code", (str,)),
}

SERVICE_FIELD = "_service"


# Representations in one `_entities` field: five pages of the largest size. A router asks
# for the entities of one query level at once; an error per bad entry costs more than a
# field, so more than this is refused whole, before any entry is looked at.
MAX_REPRESENTATIONS = 5000


def checked_representations(representations: list[Any]) -> list[dict[str, Any] | BadInputError]:
    """One entry per representation: a fresh copy holding its type and key alone, or the
    error that fails that entry alone (`_entities` items are nullable, so a bad entry does
    not blank the good ones batched with it). Messages name the problem, never the value."""
    if len(representations) > MAX_REPRESENTATIONS:
        raise BadInputError(f"at most {MAX_REPRESENTATIONS} representations in one request")
    return [_checked(representation) for representation in representations]


def _checked(representation: object) -> dict[str, Any] | BadInputError:
    if not isinstance(representation, dict):
        return BadInputError("a representation must be an object")
    type_name = representation.get("__typename")
    entity = ENTITY_KEYS.get(type_name) if isinstance(type_name, str) else None
    if entity is None:
        return BadInputError("unknown entity type")
    key, types = entity
    value = representation.get(key)
    if not isinstance(value, types) or isinstance(value, bool):
        return BadInputError(f"a representation needs its key field '{key}'")
    # Only the key: Strawberry passes every other member to `resolve_reference` as a
    # keyword argument, and nothing a caller sends besides the key is ever believed.
    return {"__typename": type_name, key: value}


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
