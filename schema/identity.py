"""Identity fields, resolved live from the central registry (resolvers.identity).

Which office fields the registry answers, and from which registry type and field, is
declared here once. Every path that makes a `Foreigner` or a `StayPermit` (pages, single
loads, field checks, `_entities`, nested references) attaches their identity with
`attach_*`, through the request's `IdentityLoader`: siblings of one level share one
upstream request, whatever their number.

Minimise (SPEC rule 8): an upstream request selects only the identity fields that the
caller may read AND the query selects under the field being resolved — read off the
document's field nodes, respecting fragments' type conditions. A caller who may read no
identity field never reaches the registry at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)

from resolvers.identity import (
    PERMIT_DOCUMENT,
    PERSON,
    EntityKey,
    IdentityUnavailableError,
)
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


class Identity:
    """What the registry answered for one record: values by office field name, or the
    failure that every selected identity field of the record reports at its own path."""

    __slots__ = ("error", "values")

    def __init__(self, values: Mapping[str, Any] | None = None,
                 error: IdentityUnavailableError | None = None) -> None:
        self.values = values or {}
        self.error = error

    def get(self, field_name: str) -> Any:
        if self.error is not None:
            raise UpstreamUnavailableError(UNAVAILABLE_MESSAGE) from self.error
        return self.values.get(field_name)


# Nothing was asked of the registry for this record (no identity field selected or
# readable): every identity field is null, no error.
NO_IDENTITY = Identity()


def wanted_fields(info: Any, type_name: str, *path: str) -> frozenset[str]:
    """The identity fields of `type_name` (office names) selected below the current field at
    `path` and readable by the caller. Cached per request by the field nodes' identity."""
    context = info.context
    upstream = UPSTREAM_FIELDS[type_name]
    readable = context.readable.get(type_name, frozenset()) & upstream.keys()
    if not readable:
        return frozenset()
    raw = getattr(info, "_raw_info", info)
    field_nodes = raw.field_nodes
    cache: dict[Any, tuple[Any, frozenset[str]]] = context.wanted_identity
    key = (id(field_nodes), type_name, path)
    hit = cache.get(key)
    if hit is not None and hit[0] is field_nodes:
        return hit[1]
    selected = _names_at(field_nodes, path, type_name, raw.fragments)
    found = frozenset(readable & selected)
    cache[key] = (field_nodes, found)  # holds the nodes: their id stays theirs
    return found


def _names_at(nodes: Sequence[FieldNode], path: tuple[str, ...], type_name: str,
              fragments: Mapping[str, FragmentDefinitionNode]) -> set[str]:
    """Field names selected at `path` below `nodes`; at the last step only fragments that
    apply to `type_name` count (an `_entities` selection holds every entity type's)."""
    sets = [node.selection_set for node in nodes if node.selection_set is not None]
    for step in path:
        sets = [field.selection_set for field in _fields(sets, fragments, None)
                if field.name.value == step and field.selection_set is not None]
    return {field.name.value for field in _fields(sets, fragments, type_name)}


def _fields(sets: Iterable[SelectionSetNode], fragments: Mapping[str, FragmentDefinitionNode],
            type_name: str | None) -> Iterable[FieldNode]:
    for selection_set in sets:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection
                continue
            if isinstance(selection, FragmentSpreadNode):
                fragment: Any = fragments.get(selection.name.value)
            else:
                fragment = selection
            if not isinstance(fragment, FragmentDefinitionNode | InlineFragmentNode):
                continue
            condition = fragment.type_condition
            if type_name is not None and condition is not None and \
                    condition.name.value != type_name:
                continue
            yield from _fields([fragment.selection_set], fragments, type_name)


def selections_for(type_name: str, fields: Iterable[str]) -> dict[str, frozenset[str]]:
    """Registry type -> registry fields, for these office fields of `type_name`."""
    by_type: dict[str, set[str]] = {}
    for field_name in fields:
        registry_type, registry_field = UPSTREAM_FIELDS[type_name][field_name]
        by_type.setdefault(registry_type, set()).add(registry_field)
    return {t: frozenset(f) for t, f in by_type.items()}


async def fetch_identities(
    info: Any, type_name: str, wanted: frozenset[str],
    keys_of: Sequence[Mapping[str, int | None]],
) -> list[Identity]:
    """One Identity per record. `keys_of[i]` maps each registry type to record i's key
    there (None: the record has none, e.g. no current permit). One loader batch for all."""
    if not wanted:
        return [NO_IDENTITY] * len(keys_of)
    selections = selections_for(type_name, wanted)
    keys: list[EntityKey] = []
    for record in keys_of:
        keys.extend(EntityKey(t, record[t]) for t in selections
                    if record.get(t) is not None)  # type: ignore[arg-type]
    loader = info.context.loaders.identity_for(selections)
    try:
        found = dict(zip(keys, await loader.load_many(keys), strict=True))
    except IdentityUnavailableError as exc:
        failed = Identity(error=exc)
        return [failed] * len(keys_of)
    identities = []
    for record in keys_of:
        values: dict[str, Any] = {}
        for field_name in wanted:
            registry_type, registry_field = UPSTREAM_FIELDS[type_name][field_name]
            key = record.get(registry_type)
            entity = found.get(EntityKey(registry_type, key)) if key is not None else None
            values[field_name] = entity.get(registry_field) if entity else None
        identities.append(Identity(values))
    return identities
