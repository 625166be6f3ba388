"""Who is asking: the principal every policy rule is written against."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller. `role` is a role the policy knows; `area` its jurisdiction."""

    role: str
    area: str | None = None
    officer_id: int | None = None
    # Token subject; None for anonymous callers.
    subject: str | None = None
