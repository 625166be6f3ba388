"""The entry and its hash: what a trail entry says, and how it is chained to the one before.

An entry says that one reader, in one request, was sent the same fields of one or more
records of one type; its records are rows of `access_trail_record` (seq, record id).

entry_hash = sha256(prev_hash || "\\n" || canonical(entry)), hex. canonical(entry) is a
compact JSON array that opens with the entry's chain format's name, so two formats never
hash alike:

- format 2 (`CANONICAL_VERSION`, since migration 0006): the entry's values in
  `CANONICAL_COLUMNS` order (`seq` included: an entry cannot be moved without changing its
  hash; `record_count` included), then the array of its record ids sorted by code point.
  A record row deleted, altered or added changes the entry's hash.
- format 1 (`CANONICAL_VERSION_V1`, the entries migration 0005 wrote, one per record): the
  values in `CANONICAL_COLUMNS_V1` order, the record id in the middle. Migration 0006 moved
  the record id to `access_trail_record`; the hash was not recomputed.

Times are UTC with microseconds; field names sorted and joined by ",". The first entry
ever links to `GENESIS`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import orjson

GENESIS = "0" * 64
# Part of every hash, so formats never collide; a new serialisation gets a new name.
CANONICAL_VERSION = "sisada-trail-v2"
CANONICAL_VERSION_V1 = "sisada-trail-v1"
# `chain_format` of an entry: which canonical form its hash was computed over.
FORMAT_V1 = 1
FORMAT_V2 = 2
CANONICAL_COLUMNS = ("seq", "at", "issuer", "subject", "role", "area", "office_code",
                     "officer_id", "record_type", "fields", "purpose", "request_id",
                     "operation_name", "document_hash", "client_address", "record_count")
CANONICAL_COLUMNS_V1 = ("seq", "at", "issuer", "subject", "role", "area", "office_code",
                        "officer_id", "record_type", "record_id", "fields", "purpose",
                        "request_id", "operation_name", "document_hash", "client_address")


class TrailWriteError(Exception):
    """The trail could not be written (database error, timeout, lock not obtained).

    The message never carries values; the cause stays on `__cause__` for the server log.
    """

    def __init__(self, message: str = "access trail unavailable") -> None:
        super().__init__(message)


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is dt.UTC:
        return value
    if value.tzinfo is None:
        # A naive time means different instants on different hosts: refused.
        raise ValueError("a trail time carries its time zone")
    return value.astimezone(dt.UTC)


def _canonical_names(names: Sequence[str]) -> tuple[str, ...]:
    """Sorted and distinct, cheaply when they already are (a page lists a thousand ids)."""
    if type(names) is tuple and all(a < b for a, b in pairwise(names)):
        return names
    return tuple(sorted(set(names)))


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """What one entry says: `principal` read `fields` of the records `record_ids` of
    `record_type`, in one request. Never a value."""

    at: dt.datetime
    issuer: str
    subject: str
    role: str
    area: str | None
    office_code: str | None
    officer_id: int | None
    record_type: str
    fields: tuple[str, ...]
    purpose: str | None
    request_id: str
    operation_name: str | None
    document_hash: str
    client_address: str | None
    record_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", _utc(self.at))
        # One canonical order, so the same read always hashes alike.
        object.__setattr__(self, "fields", _canonical_names(self.fields))
        object.__setattr__(self, "record_ids", _canonical_names(self.record_ids))
        if not self.record_ids:
            raise ValueError("a trail entry lists at least one record")


@dataclass(frozen=True, slots=True)
class TrailRecord:
    """One record's read, as callers that think per record give it (`entries_of` groups
    them into entries)."""

    at: dt.datetime
    issuer: str
    subject: str
    role: str
    area: str | None
    office_code: str | None
    officer_id: int | None
    record_type: str
    record_id: str
    fields: tuple[str, ...]
    purpose: str | None
    request_id: str
    operation_name: str | None
    document_hash: str
    client_address: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", _utc(self.at))
        object.__setattr__(self, "fields", _canonical_names(self.fields))


def entries_of(records: Iterable[TrailRecord]) -> list[TrailEntry]:
    """One entry per distinct (reader, request, record type, fields), in the order each
    first appears, listing its records."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    firsts: dict[tuple[Any, ...], TrailRecord] = {}
    for record in records:
        key = (record.at, record.issuer, record.subject, record.role, record.area,
               record.office_code, record.officer_id, record.record_type, record.fields,
               record.purpose, record.request_id, record.operation_name,
               record.document_hash, record.client_address)
        ids = groups.get(key)
        if ids is None:
            ids = groups[key] = []
            firsts[key] = record
        ids.append(record.record_id)
    return [_entry_like(firsts[key], ids) for key, ids in groups.items()]


def _entry_like(record: TrailRecord, record_ids: list[str]) -> TrailEntry:
    return TrailEntry(
        at=record.at, issuer=record.issuer, subject=record.subject, role=record.role,
        area=record.area, office_code=record.office_code, officer_id=record.officer_id,
        record_type=record.record_type, fields=record.fields, purpose=record.purpose,
        request_id=record.request_id, operation_name=record.operation_name,
        document_hash=record.document_hash, client_address=record.client_address,
        record_ids=tuple(record_ids))


def joined_fields(fields: tuple[str, ...]) -> str:
    return ",".join(fields)


def utc(value: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC time (SQLite hands back naive UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def row_of(seq: int, entry: TrailEntry) -> dict[str, Any]:
    """The column values of `entry` at `seq`, without the two hashes."""
    return {
        "seq": seq, "at": entry.at, "issuer": entry.issuer, "subject": entry.subject,
        "role": entry.role, "area": entry.area, "office_code": entry.office_code,
        "officer_id": entry.officer_id, "record_type": entry.record_type,
        "fields": joined_fields(entry.fields), "purpose": entry.purpose,
        "request_id": entry.request_id, "operation_name": entry.operation_name,
        "document_hash": entry.document_hash, "client_address": entry.client_address,
        "record_count": len(entry.record_ids), "chain_format": FORMAT_V2,
    }


def canonical_time(value: dt.datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(prev_hash: str, row: Mapping[str, Any], record_ids: Sequence[str]) -> str:
    """The format-2 hash of an entry (a row's columns, as stored or about to be, and its
    record ids in code-point order) after `prev_hash`."""
    values: list[Any] = [CANONICAL_VERSION]
    for column in CANONICAL_COLUMNS:
        value = row[column]
        values.append(canonical_time(value) if column == "at" else value)
    values.append(record_ids if isinstance(record_ids, list) else list(record_ids))
    return _digest(prev_hash, orjson.dumps(values))


def entry_hash_v1(prev_hash: str, row: Mapping[str, Any]) -> str:
    """The format-1 hash of a one-record entry (`row` carries its `record_id`): how the
    entries of migration 0005 were chained, recomputed by verify, never written again."""
    values: list[Any] = [CANONICAL_VERSION_V1]
    for column in CANONICAL_COLUMNS_V1:
        value = row[column]
        values.append(canonical_time(value) if column == "at" else value)
    return _digest(prev_hash, orjson.dumps(values))


def stored_hash(prev_hash: str, row: Mapping[str, Any], record_ids: Sequence[str]) -> str | None:
    """The hash `row` must carry in its own format, given its record rows' ids in code-point
    order; None if no hash can match (an unknown format, or a one-record entry that does
    not list exactly one record)."""
    chain_format = row["chain_format"]
    if chain_format == FORMAT_V2:
        return entry_hash(prev_hash, row, record_ids)
    if chain_format == FORMAT_V1 and len(record_ids) == 1 and row["record_count"] == 1:
        return entry_hash_v1(prev_hash, {**row, "record_id": record_ids[0]})
    return None


def _digest(prev_hash: str, canonical: bytes) -> str:
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical)
    return digest.hexdigest()
