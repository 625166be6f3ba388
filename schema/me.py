"""Who am I: `sisadaMe`, prefixed so a partner's own `me` composes beside it."""

from __future__ import annotations

import strawberry


@strawberry.type(name="SisadaMe")
class Me:
    role: str | None
    area: str | None
    officer_id: int | None
