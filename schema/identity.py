"""Identity fields, resolved live from the central registry (resolvers.identity).

Which office fields the registry answers, and from which registry type and field, is
declared here once. Every path that makes a `Foreigner` or a `StayPermit` (pages, single
loads, field checks, `_entities`, nested references) attaches their identity with
`attach_*`, through the request's `IdentityLoader`: siblings of one level share one
upstream request, whatever their number.

Minimise (SPEC rule 8): an upstream request selects only the identity fields that the
caller may read AND the query selects under the field being resolved — read off the
document's field nodes, respecting fragments' type conditions, @skip and @include. A
caller who may read no identity field never reaches the registry at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from graphql import (
    BooleanValueNode,
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionNode,
    SelectionSetNode,
    VariableNode,
    is_abstract_type,
)

from resolvers.identity import (
    PERMIT_DOCUMENT,
    PERSON,
    EntityKey,
    IdentityUnavailableError,
)
from resolvers.loaders import UnavailableEntity
from schema.errors import UpstreamUnavailableError

# Office type -> office field -> (registry type, registry field). The key of each registry
# type: a Foreigner's own id (Person), its current permit's id or a StayPermit's own id
# (PermitDocument).
UPSTREAM_FIELDS: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "Foreigner": {
        "fullName": (PERSON, "fullName"),
        "passportNumber": (PERSON, "passportNumber"),
        "birthDate": (PERSON, "birthDate"),
        "photoUrl": (PERSON, "photoUrl"),
        "permitNumber": (PERMIT_DOCUMENT, "number"),
    },
    "StayPermit": {
        "number": (PERMIT_DOCUMENT, "number"),
        "sponsorName": (PERMIT_DOCUMENT, "sponsorName"),
    },
}

UNAVAILABLE_MESSAGE = "the registry is unavailable; identity fields are null"


class Unavailable:
    """In place of an identity value the registry could not give: the field resolves to an
    UPSTREAM_UNAVAILABLE error at its own path (`resolve_attribute`), not to a quiet null."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def resolve_attribute(source: Any, name: str) -> Any:
    """The schema's default resolver (StrawberryConfig): `getattr`, except that an
    `Unavailable` value raises. Identity fields are plain attributes, so a page of names
    costs no resolver call per field and record."""
    value = getattr(source, name)
    if type(value) is Unavailable:
        raise UpstreamUnavailableError(UNAVAILABLE_MESSAGE) from value.error
    return value


def wanted_fields(info: Any, type_name: str, *path: str) -> frozenset[str]:
    """The identity fields of `type_name` (office names) selected below the current field at
    `path` and readable by the caller. Cached per request by the field nodes' identity."""
    context = info.context
    upstream = UPSTREAM_FIELDS[type_name]
    readable = context.readable.get(type_name, frozenset()) & upstream.keys()
    if not readable:
        return frozenset()
    raw = getattr(info, "_raw_info", info)
    field_nodes, variables = raw.field_nodes, raw.variable_values
    cache: dict[Any, tuple[Any, Any, frozenset[str]]] = context.wanted_identity
    # Operations of a batch share the context, and may share parsed nodes with other values.
    key = (id(field_nodes), id(variables), type_name, path)
    hit = cache.get(key)
    if hit is not None and hit[0] is field_nodes and hit[1] is variables:
        return hit[2]
    selected = _names_at(field_nodes, path, type_name, _Walk(raw.schema, raw.fragments,
                                                              variables))
    found = frozenset(readable & selected)
    cache[key] = (field_nodes, variables, found)  # holds both: their ids stay theirs
    return found


def _names_at(nodes: Sequence[FieldNode], path: tuple[str, ...], type_name: str,
              walk: _Walk) -> set[str]:
    """Field names selected at `path` below `nodes`, as the executor will see them (@skip
    and @include applied); at the last step only fragments that apply to `type_name` count
    (an `_entities` selection holds every entity type's)."""
    sets = [node.selection_set for node in nodes if node.selection_set is not None]
    for step in path:
        sets = [field.selection_set for field in walk.fields(sets, None)
                if field.name.value == step and field.selection_set is not None]
    return {field.name.value for field in walk.fields(sets, type_name)}


class _Walk:
    def __init__(self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode],
                 variables: Any) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def applies(self, condition: str, type_name: str) -> bool:
        """Does a fragment on `condition` apply to objects of `type_name`? Its own name, or
        an interface or union (`_Entity`) the type belongs to."""
        if condition == type_name:
            return True
        abstract = self.schema.get_type(condition)
        concrete = self.schema.get_type(type_name)
        return (is_abstract_type(abstract) and isinstance(concrete, GraphQLObjectType)
                and self.schema.is_sub_type(abstract, concrete))  # type: ignore[arg-type]

    def fields(self, sets: Iterable[SelectionSetNode], type_name: str | None
               ) -> Iterator[FieldNode]:
        for selection_set in sets:
            for selection in selection_set.selections:
                if not self.included(selection):
                    continue
                if isinstance(selection, FieldNode):
                    yield selection
                    continue
                if isinstance(selection, FragmentSpreadNode):
                    fragment: Any = self.fragments.get(selection.name.value)
                else:
                    fragment = selection
                if not isinstance(fragment, FragmentDefinitionNode | InlineFragmentNode):
                    continue
                condition = fragment.type_condition
                if type_name is not None and condition is not None and \
                        not self.applies(condition.name.value, type_name):
                    continue
                yield from self.fields([fragment.selection_set], type_name)

    def included(self, node: SelectionNode) -> bool:
        """@skip and @include as graphql-core applies them (a node they exclude is not
        selected: nothing is fetched for it). Anything unclear counts as selected."""
        for directive in node.directives or ():
            name = directive.name.value
            if name in ("skip", "include"):
                condition = self.condition(directive)
                if condition is (name == "skip"):
                    return False
        return True

    def condition(self, directive: DirectiveNode) -> bool | None:
        """The `if:` of a @skip/@include: a literal or a variable's value (validation and
        coercion made it a Boolean); None when it cannot be told."""
        for argument in directive.arguments:
            if argument.name.value != "if":
                continue
            value = argument.value
            if isinstance(value, BooleanValueNode):
                return value.value
            if isinstance(value, VariableNode):
                variables = getattr(self.variables, "coerced", self.variables) or {}
                found = variables.get(value.name.value)
                return found if isinstance(found, bool) else None
        return None


def selections_for(type_name: str, fields: Iterable[str]) -> dict[str, frozenset[str]]:
    """Registry type -> registry fields, for these office fields of `type_name`."""
    by_type: dict[str, set[str]] = {}
    for field_name in fields:
        registry_type, registry_field = UPSTREAM_FIELDS[type_name][field_name]
        by_type.setdefault(registry_type, set()).add(registry_field)
    return {t: frozenset(f) for t, f in by_type.items()}


async def fetch_identities(
    info: Any, type_name: str, wanted: frozenset[str],
    keys_of: Sequence[Mapping[str, int | None]], *, page: bool = False,
) -> list[dict[str, Any]]:
    """Per record, its wanted identity fields (office names) → value, or `Unavailable`.
    `keys_of[i]` maps each registry type to record i's key there (None: the record has
    none, e.g. no current permit). `page`: the records of a whole page, fetched in one
    request of their own; else one loader batch with the level's other records."""
    selections = selections_for(type_name, wanted)
    keys: list[tuple[EntityKey, frozenset[str]]] = []
    # Per record, its entity per registry type (None where it has no key there).
    entities_of: list[dict[str, EntityKey]] = []
    for record in keys_of:
        entities: dict[str, EntityKey] = {}
        for registry_type, fields in selections.items():
            key = record.get(registry_type)
            if key is not None:
                entity = entities[registry_type] = EntityKey(registry_type, key)
                keys.append((entity, fields))
        entities_of.append(entities)
    loaders = info.context.loaders
    try:
        if page:
            # A page: its keys are all known now, so one direct request (a loader would
            # hold a future per key and merge nothing more).
            answers = await loaders.identity.fetch(keys)
        else:
            # A reference, an alias, one record's permits: batched with their siblings.
            answers = await loaders.identity.load_many(keys)
    except IdentityUnavailableError as exc:
        failed = Unavailable(exc)
        return [dict.fromkeys(wanted, failed) for _record in keys_of]
    found = {entity: answer for (entity, _fields), answer in zip(keys, answers, strict=True)}
    upstream = UPSTREAM_FIELDS[type_name]
    plan = [(field_name, *upstream[field_name]) for field_name in wanted]
    identities = []
    for entities in entities_of:
        values: dict[str, Any] = {}
        for field_name, registry_type, registry_field in plan:
            entity = entities.get(registry_type)
            answer = found[entity] if entity is not None else None
            if isinstance(answer, dict):
                values[field_name] = answer.get(registry_field)
            elif isinstance(answer, UnavailableEntity):
                values[field_name] = Unavailable(answer.error)
            else:
                values[field_name] = None
        identities.append(values)
    return identities
