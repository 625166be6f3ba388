"""What the policy sees of a record: the resource types its row rules are written against.

Row rules (`allow(actor, "read", record: Foreigner)`) compare these fields with the
actor's claims. The gateway never evaluates them per record: Oso's data filtering turns
them into a row filter once per role and jurisdiction level (`policies.row_filters`), and
the data layer turns that into SQL. These classes exist so the rules have types to name,
so Oso knows the fields data filtering may use, and so an application that holds a record
can ask Oso about it directly (the benchmark's naive variant does).

Every located record carries the area codes of every level of the place it lies in, so
"inside the actor's jurisdiction" is one equality at the level of the actor's area.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.area_codes import LEVELS

LOCATED_FIELDS: dict[str, type] = {f"{level}_code": str for level in LEVELS}


@dataclass(frozen=True, slots=True)
class Located:
    city_code: str | None = None
    kecamatan_code: str | None = None
    kelurahan_code: str | None = None
    rw_code: str | None = None
    rt_code: str | None = None


@dataclass(frozen=True, slots=True)
class Foreigner(Located):
    """A foreigner lies where their current residence lies."""

    id: int = 0


@dataclass(frozen=True, slots=True)
class Report(Located):
    id: int = 0
    # Who submitted it: the token's issuer, role and subject ("dev:…" for development
    # tokens); all None if anonymous.
    submitter_issuer: str | None = None
    submitter_role: str | None = None
    submitted_by: str | None = None


@dataclass(frozen=True, slots=True)
class Activity(Located):
    id: int = 0
    officer_id: int = 0
    joint_operation: bool = False


@dataclass(frozen=True, slots=True)
class Officer:
    id: int = 0
    # The area (a city) whose immigration office the officer belongs to.
    office_area_code: str = ""


@dataclass(frozen=True, slots=True)
class Area(Located):
    """An area lies inside itself: an area's code of its own level is its code."""

    code: str = ""
    level: str = ""


@dataclass(frozen=True, slots=True)
class AccessTrailEntry:
    """An entry of the access trail: which office's reader it records (its city code)."""

    office_code: str | None = None


# Polar name (= GraphQL type name) → class and the fields data filtering may use.
RESOURCES: dict[str, tuple[type, dict[str, type]]] = {
    "Foreigner": (Foreigner, {"id": int, **LOCATED_FIELDS}),
    "Report": (Report, {"id": int, "submitter_issuer": str, "submitter_role": str,
                        "submitted_by": str, **LOCATED_FIELDS}),
    "Activity": (Activity, {"id": int, "officer_id": int, "joint_operation": bool,
                            **LOCATED_FIELDS}),
    "Officer": (Officer, {"id": int, "office_area_code": str}),
    "Area": (Area, {"code": str, "level": str, **LOCATED_FIELDS}),
    "AccessTrailEntry": (AccessTrailEntry, {"office_code": str}),
}
