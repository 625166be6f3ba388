"""The registry's wire format: the documents the gateway sends and how answers are read.

Pure functions, no I/O. Every document is fixed text plus variables: nothing a caller
typed is ever spliced into GraphQL source. A malformed answer is `MalformedAnswerError`,
whose message never quotes the answer (it may carry identity)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from resolvers.identity import REGISTRY_FIELDS, EntityKey

PING = "query SisadaRegistryPing { __typename }"
BY_DOCUMENT = ("query SisadaByDocument($number: String!) "
               "{ personsByDocument(number: $number) { id } }")
BY_NAME = ("query SisadaByName($text: String!, $first: Int!) "
           "{ personsByName(text: $text, first: $first) { id } }")

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
                  selections: Mapping[str, Sequence[str]]) -> list[dict[str, Any] | None]:
    """Entries in the order of `keys`: the selected fields only, or None where the registry
    does not know the id or reported an error for that entry."""
    entries = _data(answer).get("_entities")
    if not isinstance(entries, list) or len(entries) != len(keys):
        raise MalformedAnswerError("no _entities of the expected length")
    failed = _failed_entries(answer)
    results: list[dict[str, Any] | None] = []
    for index, (key, entry) in enumerate(zip(keys, entries, strict=True)):
        if index in failed or not isinstance(entry, dict):
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


def ids_of(people: list[Any]) -> list[int]:
    """Ids as ints; entries whose id is not a decimal integer are dropped."""
    ids: list[int] = []
    for person in people:
        value = person.get("id") if isinstance(person, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            ids.append(value)
        elif isinstance(value, str) and _DECIMAL_ID.fullmatch(value):
            ids.append(int(value))
    return ids


def read_typename(answer: Any) -> None:
    if not isinstance(_data(answer).get("__typename"), str):
        raise MalformedAnswerError("no __typename")


def _data(answer: Any) -> dict[str, Any]:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        raise MalformedAnswerError("no data")
    return data


def _failed_entries(answer: dict[str, Any]) -> set[int]:
    """Indexes of `_entities` entries that an error's path points into."""
    failed: set[int] = set()
    errors = answer.get("errors")
    for error in errors if isinstance(errors, list) else ():
        path = error.get("path") if isinstance(error, dict) else None
        if (isinstance(path, list) and len(path) >= 2 and path[0] == "_entities"
                and isinstance(path[1], int)):
            failed.add(path[1])
    return failed
