"""Who is asking: the principal every policy rule is written against."""

from __future__ import annotations

from dataclasses import dataclass

from policies.area_codes import ancestors, is_area_code, level_of


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller. `role` is a role the policy knows; `area` its jurisdiction.

    `area_level` (city … rt) and `city` (the city-level code, whose immigration office
    serves the area) are derived from `area`, so that row rules can compare a record with
    the jurisdiction at the right level by one equality. A malformed or missing area
    leaves both `None`: no rule that needs a jurisdiction holds.
    """

    role: str
    area: str | None = None
    officer_id: int | None = None
    # Token subject; None for anonymous callers.
    subject: str | None = None
    area_level: str | None = None
    city: str | None = None
    # Token issuer: a subject is unique only within its issuer.
    issuer: str | None = None
    # The partner application the token was issued to (the `client` claim): which
    # registered operations it may run (gateway/persisted). Never a policy input.
    client: str | None = None

    def __post_init__(self) -> None:
        if self.area_level is None and self.area is not None and is_area_code(self.area):
            object.__setattr__(self, "area_level", level_of(self.area))
            object.__setattr__(self, "city", ancestors(self.area)[0])


def dev_subject(role: str, area: str | None, officer_id: int | None) -> str:
    """The subject of a development token, and of the demo data's submitter of a report:
    one per role, jurisdiction and officer, so that no two demo principals share one."""
    return f"dev:{role}:{area or '-'}:{'-' if officer_id is None else officer_id}"
