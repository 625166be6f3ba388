"""Row ids as the database holds them.

Every primary and foreign key is an `Integer` column: 32 bits in PostgreSQL. A value
outside that range names no row, but sent to PostgreSQL it is a driver error instead of
an empty result — and one such key fails every load of a DataLoader batch. So ids are
checked here before they reach SQL: anything the column cannot hold is a missing row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeGuard

INTEGER_MIN = -(2**31)
INTEGER_MAX = 2**31 - 1

# Decimal digits only (int() would also take " 7", "1_0" and non-ASCII digits).
_DECIMAL = re.compile(r"-?[0-9]{1,20}")


def holds_integer(value: object) -> TypeGuard[int]:
    """Can an `Integer` column hold this value (an int, not a bool)?"""
    return (isinstance(value, int) and not isinstance(value, bool)
            and INTEGER_MIN <= value <= INTEGER_MAX)


def row_id(value: object) -> int | None:
    """The id `value` (an int or its decimal string) names, or None when no row could have it."""
    number = int(value) if isinstance(value, str) and _DECIMAL.fullmatch(value) else value
    return number if holds_integer(number) else None


def row_ids(values: Iterable[object]) -> list[int]:
    """The values of a batch an `Integer` column can hold; the others match no row."""
    return [v for v in values if holds_integer(v)]
