"""What each persona may see, written from SPEC.md ("Privacy rules that never bend" and
"Default visibility") over the rows actually in the database, and the checks that one
response must pass. Deliberately independent of policies/ and resolvers/scopes.py: the
hunt checks the gateway against the specification, not against itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
from hunt_documents import CONTACT_MARKER, KEY_FIELDS, MISSING, Document, Key
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from resolvers.models import (
    Area,
    Foreigner,
    Officer,
    OfficerActivity,
    Report,
    Residence,
    StayPermit,
)

LEVELS = ("city", "kecamatan", "kelurahan", "rw", "rt")
PUBLIC_CELL_MINIMUM = 5
# SPEC rule 7 (no linking): a record with a link the persona may not read — a report's
# foreigner, an activity's subject or report — is shown at an area only where this many
# residents are left once a reader strikes off those whose own place would be shown as some
# other area (pooled k, World.shown_area), no geo point, and free text (which may name the
# place) only where the record's own area is shown. k: the policy's location_k_minimum.
LOCATION_K_MINIMUM = 5
PERSON_LINKS = {"Report": ("foreigner", ("foreigner_id",)),
                "Activity": ("subject", ("subject_foreigner_id", "report_id"))}
PLACE_TEXT = {"Report": "text", "Activity": "notes"}

IDENTITY = {"fullName", "passportNumber", "birthDate", "photoUrl", "permitNumber", "permits",
            "residenceHistory"}
REPORT_PRIVATE = {"reporterContact", "foreigner"}

# Fields that must be null for a role, from the default-visibility table (plus two choices
# of the shipped policy that the hand-written tests pin too: partners get no receipt codes
# and no activity notes, which quote receipt codes).
HIDDEN: dict[str, dict[str, set[str]]] = {
    "police": {
        "Foreigner": IDENTITY,
        "Report": REPORT_PRIVATE | {"receiptCode"},
        "Activity": {"subject", "latitude", "longitude", "notes", "report"},
    },
    "district": {
        "Foreigner": IDENTITY,
        "Residence": {"streetAddress", "latitude", "longitude"},
        "Report": REPORT_PRIVATE | {"assignedOfficer"},
    },
    "neighbourhood": {
        "Area": {"byNationality", "byPermitType"},
        "Report": REPORT_PRIVATE | {"assignedOfficer"},
    },
    "public": {"Area": {"byNationality", "byPermitType"}},
}
HIDDEN["military"] = HIDDEN["police"]

SECURITY_PARTNERS = {"police", "military"}
PROFILE_READERS = SECURITY_PARTNERS | {"district"}

# Leaks the hunt found that are not fixed yet: (persona, type) -> what leaks. Rows of these
# types are not judged for that persona, so the hunt keeps looking for everything else;
# tests/privacy/test_leak_regressions.py pins each one (strict xfail) until it is fixed.
# Delete an entry together with its xfail marker.
KNOWN_LEAKS: dict[tuple[str, str], str] = {}


def _located(row: dict[str, Any]) -> set[str]:
    return {row[f"{level}_code"] for level in LEVELS if row.get(f"{level}_code")}


def _within(code: str, area: str) -> bool:
    return code == area or code.startswith(area + ".")


@dataclass
class World:
    """Every row of the hunt's database that the oracle judges against."""

    foreigners: dict[int, dict[str, Any]]
    permits: list[dict[str, Any]]
    residences: list[dict[str, Any]]
    reports: dict[int, dict[str, Any]]
    activities: dict[int, dict[str, Any]]
    officers: dict[int, dict[str, Any]]
    areas: dict[str, dict[str, Any]]
    current: dict[int, dict[str, Any]] = field(init=False)
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.current = {r["foreigner_id"]: r for r in self.residences if r["valid_to"] is None}
        self.counts = defaultdict(int)
        for residence in self.current.values():
            for code in _located(residence):
                self.counts[code] += 1
        self._pools: dict[dt.date, dict[str, int]] = {}

    def shown_area(self, row: dict[str, Any], moment: dt.datetime) -> str | None:
        """Where a record of that day may be shown (rule 7, pooled k): the finest area of
        its chain whose pool holds k — the current residents who had moved in by the day and
        whose finer areas (RT, RW, …) did not resolve on their own, judged on everyone who
        lived there that day, movers-out included. None: withheld."""
        day = moment.astimezone(dt.UTC).date() if moment.tzinfo else moment.date()
        if day not in self._pools:
            self._pools[day] = self._pooled(day)
        pools = self._pools[day]
        chain = [row[f"{level}_code"] for level in reversed(LEVELS) if row.get(f"{level}_code")]
        return next((code for code in chain if pools.get(code, 0) >= LOCATION_K_MINIMUM), None)

    def _pooled(self, day: dt.date) -> dict[str, int]:
        lived = [r for r in self.residences if r["valid_from"] <= day
                 and (r["valid_to"] is None or r["valid_to"] > day)]
        resolved: set[str] = set()
        pools: dict[str, int] = defaultdict(int)
        finest_first = tuple(reversed(LEVELS))
        for depth, level in enumerate(finest_first):
            day_pool: dict[str, int] = defaultdict(int)
            for r in lived:
                code = r[f"{level}_code"]
                if code is None or any(r[f"{f}_code"] in resolved
                                       for f in finest_first[:depth]):
                    continue
                day_pool[code] += 1
                if r["valid_to"] is None:
                    pools[code] += 1
            resolved |= {code for code, n in day_pool.items() if n >= LOCATION_K_MINIMUM}
        return pools


async def read_world(url: str, registry_url: str) -> World:
    """The office's rows, foreigners and permits joined with their identity from the
    registry's database (the office holds none)."""
    from examples.registry.models import PermitDocument, Person

    async def rows(conn: Any, model: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in (await conn.execute(select(model))).mappings()]

    registry = create_async_engine(registry_url)
    try:
        async with registry.connect() as conn:
            people = {r["id"]: r for r in await rows(conn, Person)}
            documents = {r["id"]: r for r in await rows(conn, PermitDocument)}
    finally:
        await registry.dispose()
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return World(
                foreigners={r["id"]: {**people.get(r["id"], {}), **r}
                            for r in await rows(conn, Foreigner)},
                permits=[{**documents.get(r["id"], {}), **r}
                         for r in await rows(conn, StayPermit)],
                residences=await rows(conn, Residence),
                reports={r["id"]: r for r in await rows(conn, Report)},
                activities={r["id"]: r for r in await rows(conn, OfficerActivity)},
                officers={r["id"]: r for r in await rows(conn, Officer)},
                areas={r["code"]: r for r in await rows(conn, Area)},
            )
    finally:
        await engine.dispose()


@dataclass
class Persona:
    name: str
    role: str
    area: str | None
    subject: str | None
    issuer: str | None = None

    @classmethod
    def from_token(cls, name: str, token: str | None) -> Persona:
        if token is None:
            return cls(name, "public", None, None)
        claims = jwt.decode(token, options={"verify_signature": False})
        return cls(name, claims["role"], claims.get("area"), claims.get("sub"),
                   claims.get("iss"))

    @property
    def foreign_office(self) -> bool:
        """An immigration principal whose jurisdiction is not this office's city."""
        return self.role.startswith("immigration") and self.area is not None


class Scope:
    """The rows one persona may see, per SPEC.md, recomputed when the world changes."""

    def __init__(self, persona: Persona, world: World, office_city: str) -> None:
        self.persona = persona
        self.world = world
        role, area = persona.role, persona.area
        self.office_city = office_city
        ours = not persona.foreign_office or area == office_city
        jurisdiction = area if (role in PROFILE_READERS and area) else None
        self.foreigners = {fid for fid, r in world.current.items()
                           if jurisdiction and jurisdiction in _located(r)} if ours else set()
        self.residences = {world.current[fid]["id"] for fid in self.foreigners}
        if role in SECURITY_PARTNERS and area:
            self.reports = {rid for rid, r in world.reports.items() if area in _located(r)}
            self.activities = {aid for aid, a in world.activities.items()
                               if a["joint_operation"] and area in _located(a)}
            self.officers = set(world.officers)
        else:
            own = role in ("district", "neighbourhood") and persona.subject
            self.reports = {rid for rid, r in world.reports.items()
                            if own and r["submitted_by"] == persona.subject
                            and r["submitter_role"] == role
                            and r["submitter_issuer"] == persona.issuer}
            self.activities = set()
            self.officers = set()
        if (persona.name, "Activity") in KNOWN_LEAKS:
            self.activities |= set(world.activities)
        if (persona.name, "Officer") in KNOWN_LEAKS:
            self.officers |= set(world.officers)

    def area_allowed(self, code: str) -> bool:
        role, area = self.persona.role, self.persona.area
        if code not in self.world.areas:
            return False
        if role == "public":
            return self.world.areas[code]["level"] == "kecamatan"
        if role in PROFILE_READERS | {"neighbourhood"} and area:
            return _within(code, area)
        return False

    def row_allowed(self, type_name: str, key: Any) -> bool | None:
        """True/False for a row the world knows; None for a row it does not (yet)."""
        if type_name == "Area":
            return self.area_allowed(str(key)) if str(key) in self.world.areas else None
        try:
            row_id = int(key)
        except (TypeError, ValueError):
            return False
        known, allowed = {
            "Foreigner": (self.world.foreigners, self.foreigners),
            "Residence": ({r["id"] for r in self.world.residences}, self.residences),
            "StayPermit": ({p["id"] for p in self.world.permits}, set()),
            "Report": (self.world.reports, self.reports),
            "Activity": (self.world.activities, self.activities),
            "Officer": (self.world.officers, self.officers),
        }.get(type_name, (None, None))
        if known is None:
            return True  # not a row type
        if row_id not in known:
            return None
        return row_id in allowed

    def key_out_of_scope(self, key: Key) -> bool:
        """Does `key` name an existing row outside the scope, disjoint from everything in it?

        Such a key must answer exactly like one that names nothing. An area that contains
        areas in scope is not disjoint: filtering by it legitimately finds them.
        """
        kind, value = key.kind, key.value
        if kind == MISSING:
            return False
        if kind == "area":
            if value not in self.world.areas or self.area_allowed(value):
                return False
            return not any(_within(code, value) for code in self.world.areas
                           if self.area_allowed(code))
        if kind == "document":
            owner = self.document_owner(value)
            return owner is not None and owner not in self.foreigners
        allowed = {"foreigner": self.foreigners, "report": self.reports,
                   "officer": self.officers}[kind]
        rows = {"foreigner": self.world.foreigners, "report": self.world.reports,
                "officer": self.world.officers}[kind]
        return value.isdigit() and int(value) in rows and int(value) not in allowed

    def document_owner(self, number: str) -> int | None:
        number = number.strip().upper()
        for fid, f in self.world.foreigners.items():
            if f["passport_number"] == number:
                return fid
        for permit in self.world.permits:
            if permit["number"] == number:
                return permit["foreigner_id"]
        return None


def missing_twin(key: Key) -> Key:
    """A key of the same shape that names no row."""
    if key.kind == "area":
        parts = key.value.split(".")
        return Key(MISSING, ".".join([parts[0], "99", *parts[2:]]))
    if key.kind == "document":
        return Key(MISSING, "QZ" + key.value[2:])
    return Key(MISSING, str(90_000_000 + int(key.value)))


class SecretScanner:
    """Finds any of many secret strings in a text in one pass (secrets indexed by prefix)."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = {s: why for s, why in secrets.items() if len(s) >= 4}
        self.width = min((len(s) for s in self.secrets), default=4)
        self.by_prefix: dict[str, list[str]] = defaultdict(list)
        for secret in self.secrets:
            self.by_prefix[secret[: self.width]].append(secret)

    def find(self, text: str, ignore: str = "") -> list[tuple[str, str]]:
        found = []
        by_prefix = self.by_prefix
        width = self.width
        for i in range(len(text) - width + 1):
            candidates = by_prefix.get(text[i : i + width])
            if not candidates:
                continue
            for secret in candidates:
                if text.startswith(secret, i) and secret not in ignore:
                    found.append((secret, self.secrets[secret]))
        return found


def _strings(*values: Any) -> Iterator[str]:
    for value in values:
        if value is not None:
            yield value.isoformat() if hasattr(value, "isoformat") else str(value)


class Judge:
    """Checks every response one persona receives."""

    def __init__(self, persona: Persona, world_source: Callable[[], World],
                 office_city: str) -> None:
        self.persona = persona
        self.world_source = world_source
        self.office_city = office_city
        self.refreshes = 0
        self.seen: dict[str, int] = defaultdict(int)  # objects judged, by type
        self.redacted: dict[str, list[str]] = {}  # extensions.redacted of the response
        self.reload(world_source())

    def reload(self, world: World) -> None:
        self.world = world
        self.scope = Scope(self.persona, world, self.office_city)
        self.hidden = HIDDEN.get(self.persona.role, {})
        self.scanner = SecretScanner(self.secrets())

    def refresh(self) -> None:
        self.refreshes += 1
        self.reload(self.world_source())

    def secrets(self) -> dict[str, str]:
        """Values this persona must never receive, minus any that a value it may receive
        contains (a birth date that is also some permit's expiry date proves nothing)."""
        w = self.world
        secrets: dict[str, str] = {}
        for f in w.foreigners.values():
            secrets[f["full_name"]] = "foreigner name"
            secrets[f["passport_number"]] = "passport number"
            secrets[f["birth_date"].isoformat()] = "birth date"
        for p in w.permits:
            secrets[p["number"]] = "permit number"
        for r in w.reports.values():
            if r["reporter_contact"]:
                secrets[r["reporter_contact"]] = "reporter contact"
        allowed_addresses = set()
        if self.persona.role in SECURITY_PARTNERS:
            allowed_addresses = {w.current[fid]["street_address"] for fid in self.scope.foreigners}
        for r in w.residences:
            if r["street_address"] not in allowed_addresses:
                secrets[r["street_address"]] = "street address out of reach"
        visible = "\x00".join(self._visible_strings(allowed_addresses))
        return {s: why for s, why in secrets.items() if s not in visible}

    def _visible_strings(self, allowed_addresses: set[str]) -> Iterator[str]:
        w = self.world
        yield from allowed_addresses
        for o in w.officers.values():
            yield from _strings(o["name"], o["rank"], o["unit"])
        for a in w.areas.values():
            yield from _strings(a["code"], a["name"])
        for r in w.reports.values():
            yield from _strings(r["text"], r["receipt_code"], r["created_at"], r["updated_at"])
        for a in w.activities.values():
            yield from _strings(a["notes"], a["occurred_at"])
        for f in w.foreigners.values():
            yield from _strings(f["nationality"], f["sex"])
        for p in w.permits:
            yield from _strings(p["issued_on"], p["expires_on"], p["sponsor_type"])
        for r in w.residences:
            yield from _strings(r["valid_from"], r["valid_to"])

    # -- one response

    def check(self, document: Document, request: str, status: int, raw: bytes) -> list[str]:
        problems = []
        if status >= 500:
            problems.append(f"HTTP {status}: {raw[:300]!r}")
        text = raw.decode("utf-8", errors="replace")
        for secret, why in self.scanner.find(text, ignore=request):
            if CONTACT_MARKER in secret:
                continue
            problems.append(f"{why} in the response: {secret!r}")
        for marker in _markers(text):
            if marker not in request:
                problems.append(f"a reporter contact the hunt submitted earlier: {marker!r}")
        try:
            body = json.loads(text)
        except ValueError:
            return [*problems, f"response is not JSON: {text[:200]!r}"]
        data = body.get("data") if isinstance(body, dict) else None
        if data is not None:
            self.redacted = (body.get("extensions") or {}).get("redacted") or {}
            problems += self.walk(data, document.aliases)
        return problems

    def walk(self, value: Any, aliases: dict[str, str]) -> list[str]:
        problems: list[str] = []
        if isinstance(value, list):
            for item in value:
                problems += self.walk(item, aliases)
            return problems
        if not isinstance(value, dict):
            return problems
        type_name = value.get("__typename")
        if type_name:
            problems += self.judge_object(type_name, value, aliases)
        for item in value.values():
            problems += self.walk(item, aliases)
        return problems

    def judge_object(self, type_name: str, obj: dict[str, Any], aliases: dict[str, str]
                     ) -> list[str]:
        self.seen[type_name] += 1
        problems = []
        fields = {aliases.get(k, k): v for k, v in obj.items()}
        hidden = self.hidden.get(type_name, set())
        for name in hidden & fields.keys():
            if fields[name] is not None:
                problems.append(f"{type_name}.{name} must be null for {self.persona.role}, "
                                f"got {json.dumps(fields[name])[:120]}")
            elif name not in self.redacted.get(type_name, []):
                # SPEC rule 3: hidden is told apart from unknown.
                problems.append(f"{type_name}.{name} is hidden but not listed in "
                                "extensions.redacted")
        key_field = KEY_FIELDS.get(type_name)
        key = fields.get(key_field) if key_field else None
        if key is not None and type_name != "ForeignerCheck":
            allowed = self.scope.row_allowed(type_name, key)
            if allowed is None:  # a row created since the world was read (a mutation)
                self.refresh()
                allowed = self.scope.row_allowed(type_name, key)
            if not allowed:
                problems.append(f"{type_name} {key} is outside the scope of "
                                f"{self.persona.name}")
        if type_name == "Area" and key is not None:
            problems += self.judge_counts(str(key), obj, aliases)
        if type_name in PERSON_LINKS and key is not None:
            problems += self.judge_linking(type_name, key, obj, aliases)
        if type_name == "ForeignerCheck" and fields.get("registered"):
            owner = self.scope.document_owner(str(key or ""))
            if owner not in self.scope.foreigners:
                problems.append(f"checkForeigner says {key!r} is registered, "
                                f"but its holder is outside the scope of {self.persona.name}")
        return problems

    def judge_linking(self, type_name: str, key: Any, obj: dict[str, Any],
                      aliases: dict[str, str]) -> list[str]:
        """Rule 7: where a record with a hidden link lies singles out nobody."""
        link_field, link_columns = PERSON_LINKS[type_name]
        if link_field not in self.hidden.get(type_name, set()):
            return []
        rows = self.world.reports if type_name == "Report" else self.world.activities
        try:
            row = rows.get(int(key))
        except (TypeError, ValueError):
            return []
        if row is None or not any(row[c] for c in link_columns):
            return []
        exact = row["rt_code"] or row["rw_code"] or row["kelurahan_code"]
        moment = row["created_at"] if type_name == "Report" else row["occurred_at"]
        allowed = self.world.shown_area(row, moment)
        shown: list[Any] = []
        problems = []
        for alias, value in obj.items():
            name = aliases.get(alias, alias)
            if value is None:
                continue
            if name == "areaCode":
                shown.append(value)
            elif name == "area" and isinstance(value, dict):
                # Walked as an Area of its own too; which area it is, is judged here.
                shown += [v for k, v in value.items() if aliases.get(k, k) == "code"]
            elif name in ("latitude", "longitude"):
                problems.append(f"{type_name} {key} has a hidden link and shows {name}")
            elif name == PLACE_TEXT[type_name] and allowed != exact:
                problems.append(f"{type_name} {key} has a hidden link and shows its {name}, "
                                f"which may name {exact}, an area not shown for it")
        for code in shown:
            if not isinstance(code, str) or not _within(exact, code):
                problems.append(f"{type_name} {key} shows area {code!r}, which does not "
                                f"contain it")
            elif self.world.counts.get(code, 0) < LOCATION_K_MINIMUM:
                problems.append(f"{type_name} {key} has a hidden link and shows area {code}, "
                                f"where {self.world.counts.get(code, 0)} foreigners live "
                                f"(< {LOCATION_K_MINIMUM})")
            elif code != allowed:
                # Finer than the pooled rule allows: striking off the residents of its
                # sub-areas that are shown on their own leaves fewer than k.
                problems.append(f"{type_name} {key} has a hidden link and shows area {code}, "
                                f"where the pooled rule shows {allowed}")
        return problems

    def judge_counts(self, code: str, obj: dict[str, Any], aliases: dict[str, str]
                     ) -> list[str]:
        if self.persona.role != "public":
            return []
        problems = []
        if self.world.areas.get(code, {}).get("level") != "kecamatan":
            problems.append(f"public received area {code}, which is not a kecamatan")
        true_count = self.world.counts.get(code, 0)
        for key, value in obj.items():
            if aliases.get(key, key) != "foreignerCount" or value is None:
                continue
            if value < PUBLIC_CELL_MINIMUM:
                problems.append(f"public count {value} for {code} is below "
                                f"{PUBLIC_CELL_MINIMUM}")
            elif value != true_count:
                problems.append(f"public count {value} for {code} is not the true count "
                                f"{true_count}")
        return problems


def _markers(text: str) -> list[str]:
    found = []
    start = text.find(CONTACT_MARKER)
    while start != -1:
        end = start + len(CONTACT_MARKER)
        while end < len(text) and (text[end].isalnum() or text[end] in "@.-"):
            end += 1
        found.append(text[start:end])
        start = text.find(CONTACT_MARKER, end)
    return found
