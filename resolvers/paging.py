"""Keyset (cursor) pagination: a cursor is the sort key of the last row, opaque to clients."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson


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


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Any]
    end_cursor: str | None
    has_next_page: bool
