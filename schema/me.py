"""Who am I."""

from __future__ import annotations

import strawberry


@strawberry.type
class Me:
    role: str | None
    area: str | None
    officer_id: int | None
