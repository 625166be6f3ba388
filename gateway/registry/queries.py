"""The registry's wire format: the documents the gateway sends and how answers are read.

Pure functions, no I/O. Every document is fixed text plus variables: nothing a caller
typed is ever spliced into GraphQL source. A malformed answer is `MalformedAnswerError`,
whose message never quotes the answer (it may carry identity)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from resolvers.identity import (
    REGISTRY_FIELDS,
    EntityKey,
    EntityResult,
    IdentityUnavailableError,
)

PING = "query SisadaRegistryPing { __typename }"
BY_DOCUMENT = ("query SisadaByDocument($number: String!) "
               "{ personsByDocument(number: $number) { id } }")
BY_NAME = ("query SisadaByName($text: String!, $first: Int!, $after: ID) "
           "{ personsByName(text: $text, first: $first, after: $after) { id } }")
# What an entry the registry reported an error for becomes (safe to show: no content).
ENTRY_FAILED = "registry could not answer for this record"

# Registry ids are decimal integers; `int()` alone would also take " 7",
# other scripts' digits or "1_0".
_DECIMAL_ID = re.compile(r"[0-9]{1,18}")


class MalformedAnswerError(Exception):
    """The registry answered with something that is not the expected shape."""


def checked_selections(selections: Mapping[str, frozenset[str]]) -> dict[str, tuple[str, ...]]:
    """The non-empty selections, sorted; a type or field the registry contract does not
    name is a programming error, refused before anything is sent."""
    checked: dict[str, tuple[str, ...]] = {}
    for type_name, fields in selections.items():
        allowed = REGISTRY_FIELDS.get(type_name)
        if allowed is None:
            raise ValueError(f"not a registry type: {type_name!r}")
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not registry fields of {type_name}: {sorted(unknown)}")
        if fields:
            checked[type_name] = tuple(sorted(fields))
    return checked


def entities_document(selections: Mapping[str, Sequence[str]]) -> str:
    """One `_entities` query with one inline fragment per type that has a selection."""
    fragments = " ".join(f"... on {type_name} {{ {' '.join(fields)} }}"
                         for type_name, fields in sorted(selections.items()) if fields)
    return ("query SisadaIdentity($representations: [_Any!]!) "
            f"{{ _entities(representations: $representations) {{ {fragments} }} }}")


def representations(keys: Sequence[EntityKey]) -> list[dict[str, str]]:
    return [{"__typename": key.type_name, "id": str(key.id)} for key in keys]


def read_entities(answer: Any, keys: Sequence[EntityKey],
                  selections: Mapping[str, Sequence[str]]) -> list[EntityResult]:
    """Entries in the order of `keys`: the selected fields only; None where the registry
    does not know the id (a null entry, no error); an `IdentityUnavailableError` instance
    where it reported an error for that entry, or sent something that is not an object.
    An error that names no entry (no path, or a path not into one entry) makes every entry
    unavailable: the registry said something failed and did not say which."""
    entries = _data(answer).get("_entities")
    if not isinstance(entries, list) or len(entries) != len(keys):
        raise MalformedAnswerError("no _entities of the expected length")
    failed = _failed_entries(answer, len(entries))
    results: list[EntityResult] = []
    for index, (key, entry) in enumerate(zip(keys, entries, strict=True)):
        if index in failed or (entry is not None and not isinstance(entry, dict)):
            results.append(IdentityUnavailableError(ENTRY_FAILED))
            continue
        if entry is None:
            results.append(None)
            continue
        # Only what was asked for travels on, whatever else the registry sent.
        results.append({field: entry.get(field) for field in selections[key.type_name]})
    return results


def read_list(answer: Any, field: str) -> list[Any]:
    """The list a look-up answered (its length counts, even for entries then dropped)."""
    people = _data(answer).get(field)
    if not isinstance(people, list):
        raise MalformedAnswerError(f"no {field} list")
    return people


def page_ids(people: list[Any], after: int | None) -> list[int]:
    """The ids of one `personsByName` page: every entry must carry a decimal id, strictly
    ascending and above `after` (the contract's keyset order). Anything else is malformed:
    a page walk must neither skip people nor loop."""
    ids: list[int] = []
    previous = after
    for person in people:
        registry_id = _id_of(person)
        if registry_id is None or (previous is not None and registry_id <= previous):
            raise MalformedAnswerError("personsByName is not a page of ascending ids")
        ids.append(registry_id)
        previous = registry_id
    return ids


def ids_of(people: list[Any]) -> list[int]:
    """Ids as ints; entries whose id is not a decimal integer are dropped."""
    return [registry_id for registry_id in map(_id_of, people) if registry_id is not None]


def _id_of(person: Any) -> int | None:
    value = person.get("id") if isinstance(person, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DECIMAL_ID.fullmatch(value):
        return int(value)
    return None


def read_typename(answer: Any) -> None:
    if not isinstance(_data(answer).get("__typename"), str):
        raise MalformedAnswerError("no __typename")


def _data(answer: Any) -> dict[str, Any]:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        raise MalformedAnswerError("no data")
    return data


def _failed_entries(answer: dict[str, Any], count: int) -> set[int]:
    """Indexes of `_entities` entries that an error's path points into; all of them when
    an error points into none in particular."""
    failed: set[int] = set()
    errors = answer.get("errors")
    if errors is not None and not isinstance(errors, list):
        return set(range(count))
    for error in errors or ():
        path = error.get("path") if isinstance(error, dict) else None
        if (isinstance(path, list) and len(path) >= 2 and path[0] == "_entities"
                and isinstance(path[1], int) and not isinstance(path[1], bool)
                and 0 <= path[1] < count):
            failed.add(path[1])
        else:
            return set(range(count))
    return failed
