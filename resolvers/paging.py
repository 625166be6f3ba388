"""Keyset (cursor) pagination: a cursor is the sort key of the last row, opaque to clients.

Queries encode and decode plain cursors (the order and the key, in JSON); what a client
sees is that plain cursor sealed by `CursorSeal` — encrypted and authenticated — so it
carries no value the caller could read off it (a sort key, an expiry date), and a
cursor the gateway did not issue, or one altered by a single bit, does not open.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV


class CursorError(ValueError):
    def __init__(self) -> None:
        super().__init__("invalid cursor")


MAX_PAGE_SIZE = 1000


class PageSizeError(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"page size must be between 1 and {limit}")
        self.limit = limit


def check_page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise PageSizeError(MAX_PAGE_SIZE)
    return first


def encode_cursor(order: str, key: list[Any]) -> str:
    raw = orjson.dumps({"o": order, "k": key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(order: str, cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise CursorError() from exc
    if not isinstance(data, dict) or data.get("o") != order or not isinstance(data.get("k"), list):
        raise CursorError()
    return data["k"]


# Far above any sealed cursor of ours (a name key of 200 characters seals to ~400).
MAX_SEALED_CURSOR = 2048
_CURSOR_CONTEXT = b"sisada-cursor-v1"


class CursorSeal:
    """Seals plain cursors with AES-SIV (RFC 5297, from `cryptography`).

    Deterministic authenticated encryption: the same position always gives the same
    cursor (responses stay byte-comparable), and equality of two cursors is all a
    cursor reveals. `key` is 64 bytes (AES-256-SIV); replicas that share it share cursors.
    """

    KEY_BYTES = 64

    def __init__(self, key: bytes) -> None:
        if len(key) != self.KEY_BYTES:
            raise ValueError(f"a cursor key is {self.KEY_BYTES} bytes")
        self._aead = AESSIV(key)

    def seal(self, cursor: str) -> str:
        sealed = self._aead.encrypt(cursor.encode(), [_CURSOR_CONTEXT])
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, sealed: str) -> str:
        if len(sealed) > MAX_SEALED_CURSOR:
            raise CursorError()
        try:
            padded = sealed + "=" * (-len(sealed) % 4)
            raw = base64.urlsafe_b64decode(padded.encode("ascii"))
            return self._aead.decrypt(raw, [_CURSOR_CONTEXT]).decode()
        except (binascii.Error, ValueError, UnicodeError, InvalidTag) as exc:
            raise CursorError() from exc


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Any]
    end_cursor: str | None
    has_next_page: bool
