"""Hierarchical area codes: `31.74` city, `31.74.02` kecamatan, `31.74.02.1001` kelurahan,
`31.74.02.1001.03` RW, `31.74.02.1001.03.007` RT (Kemendagri codes, extended to RW/RT)."""

from __future__ import annotations

import re
import unicodedata

LEVELS: tuple[str, ...] = ("city", "kecamatan", "kelurahan", "rw", "rt")

# ASCII digits only: `\d` would take every script's digits, which no stored code has.
_CODE = re.compile(r"[0-9]{2}\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4}(\.[0-9]{2}(\.[0-9]{3})?)?)?)?")


class AreaCodeError(ValueError):
    """An area code that is not of the hierarchical form."""

    def __init__(self, code: str) -> None:
        super().__init__("malformed area code")
        self.code = code


def is_area_code(code: str) -> bool:
    return bool(_CODE.fullmatch(code))


def normalized_area_code(value: str) -> str:
    """A code as a caller gave it, NFKC-normalised (fullwidth digits are ASCII digits);
    `AreaCodeError` when the result is not of the hierarchical form."""
    code = unicodedata.normalize("NFKC", value)
    if not is_area_code(code):
        raise AreaCodeError(code)
    return code


def level_of(code: str) -> str:
    """The level of the tree a code names (`city` … `rt`)."""
    if not is_area_code(code):
        raise AreaCodeError(code)
    return LEVELS[code.count(".") - 1]


def ancestors(code: str) -> list[str]:
    """Codes of the code itself and every level above it, top first."""
    parts = code.split(".")
    return [".".join(parts[:n]) for n in range(2, len(parts) + 1)]


def located_codes(rt_or_lower_code: str) -> dict[str, str | None]:
    """Column values of `LocatedMixin` for a row located at `code`."""
    chain = ancestors(rt_or_lower_code)
    values: dict[str, str | None] = {f"{level}_code": None for level in LEVELS}
    for level, code in zip(LEVELS, chain, strict=False):
        values[f"{level}_code"] = code
    return values
