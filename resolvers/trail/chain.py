"""The entry and its hash: what a trail entry says, and how it is chained to the one before.

entry_hash = sha256(prev_hash || "\\n" || canonical(entry)), hex, where canonical(entry) is the
compact JSON array of the entry's values in `CANONICAL_COLUMNS` order, `seq` included (an
entry cannot be moved without changing its hash), times as UTC with microseconds, and the
field names sorted and joined by ",". The first entry ever links to `GENESIS`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import orjson

GENESIS = "0" * 64
# Bumped if the serialisation ever changes; part of every hash, so versions never collide.
CANONICAL_VERSION = "sisada-trail-v1"
CANONICAL_COLUMNS = ("seq", "at", "issuer", "subject", "role", "area", "office_code",
                     "officer_id", "record_type", "record_id", "fields", "purpose",
                     "request_id", "operation_name", "document_hash", "client_address")


class TrailWriteError(Exception):
    """The trail could not be written (database error, timeout, lock not obtained).

    The message never carries values; the cause stays on `__cause__` for the server log.
    """

    def __init__(self, message: str = "access trail unavailable") -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class TrailRecord:
    """What one entry says: `principal` read `fields` of one record. Never a value."""

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
        # Cheap when the writer already gives UTC and sorted, distinct fields (a page writes
        # a thousand records per request).
        if self.at.tzinfo is not dt.UTC:
            if self.at.tzinfo is None:
                # A naive time means different instants on different hosts: refused.
                raise ValueError("a trail time carries its time zone")
            object.__setattr__(self, "at", self.at.astimezone(dt.UTC))
        fields = self.fields
        if not (type(fields) is tuple and all(a < b for a, b in pairwise(fields))):
            # One canonical order, so the same read always hashes alike.
            object.__setattr__(self, "fields", tuple(sorted(set(fields))))


def joined_fields(fields: tuple[str, ...]) -> str:
    return ",".join(fields)


def utc(value: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC time (SQLite hands back naive UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def row_of(seq: int, record: TrailRecord) -> dict[str, Any]:
    """The column values of `record` at `seq`, without the two hashes."""
    return {
        "seq": seq, "at": record.at, "issuer": record.issuer, "subject": record.subject,
        "role": record.role, "area": record.area, "office_code": record.office_code,
        "officer_id": record.officer_id, "record_type": record.record_type,
        "record_id": record.record_id, "fields": joined_fields(record.fields),
        "purpose": record.purpose, "request_id": record.request_id,
        "operation_name": record.operation_name, "document_hash": record.document_hash,
        "client_address": record.client_address,
    }


def canonical_time(value: dt.datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(prev_hash: str, row: Mapping[str, Any], at_text: str | None = None) -> str:
    """The hash of an entry (a row's columns, as stored or about to be) after `prev_hash`.

    `at_text`: `canonical_time(row["at"])` if the caller has it (formatting a time costs
    more than hashing; the entries of one request share one time)."""
    values: list[Any] = [CANONICAL_VERSION]
    for column in CANONICAL_COLUMNS:
        value = row[column]
        if column == "at":
            value = at_text if at_text is not None else canonical_time(value)
        values.append(value)
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(orjson.dumps(values))
    return digest.hexdigest()


class BatchHasher:
    """`entry_hash` for a batch, fast: the entries of one request share all but their seq,
    record and fields, so the canonical JSON of the shared parts is serialised once per
    reader and spliced (orjson's compact arrays concatenate: "[a,b]" is "[" a "," b "]").
    Equal to `entry_hash` byte for byte (tests/resolvers/test_trail_chain.py)."""

    def __init__(self) -> None:
        self._parts: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}

    def hash(self, prev_hash: str, seq: int, record: TrailRecord) -> str:
        shared = (record.at, record.issuer, record.subject, record.role, record.area,
                  record.office_code, record.officer_id, record.purpose, record.request_id,
                  record.operation_name, record.document_hash, record.client_address)
        parts = self._parts.get(shared)
        if parts is None:
            middle = orjson.dumps([canonical_time(record.at), record.issuer, record.subject,
                                   record.role, record.area, record.office_code,
                                   record.officer_id])[1:-1]
            tail = orjson.dumps([record.purpose, record.request_id, record.operation_name,
                                 record.document_hash, record.client_address])[1:-1]
            parts = self._parts[shared] = (middle, tail)
        middle, tail = parts
        canonical = b"".join((_HEAD, str(seq).encode("ascii"), b",", middle, b",",
                              orjson.dumps(record.record_type), b",",
                              orjson.dumps(record.record_id), b",",
                              orjson.dumps(joined_fields(record.fields)), b",", tail, b"]"))
        digest = hashlib.sha256(prev_hash.encode("ascii"))
        digest.update(b"\n")
        digest.update(canonical)
        return digest.hexdigest()


_HEAD = b'["' + CANONICAL_VERSION.encode("ascii") + b'",'
