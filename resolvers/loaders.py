"""Per-request DataLoaders: every relation is fetched in one statement per batch,
so the number of statements of a query does not grow with the length of its lists.

Loaders of scoped types apply the principal's scope condition: a reference to
an out-of-scope row loads as None, exactly like a missing one. Id loaders send SQL only
the keys an `Integer` column can hold (resolvers.ids): any other key is a missing row,
and never an error that would fail every other load of its batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiodataloader import DataLoader
from sqlalchemy import func, select

from policies.area_codes import AreaCodeError, level_of
from policies.loader import LocationPrecision
from resolvers.db import Database
from resolvers.identity import (
    EntityKey,
    IdentitySource,
    IdentityUnavailableError,
    UnconfiguredRegistry,
)
from resolvers.ids import row_ids
from resolvers.models import (
    Area,
    Foreigner,
    Officer,
    OfficerActivity,
    Report,
    Residence,
    StayPermit,
)
from resolvers.precision import activity_select, report_select
from resolvers.queries import foreigner_select
from resolvers.scopes import Condition


class _ScopedLoader(DataLoader):
    def __init__(self, db: Database, scope: Condition) -> None:
        super().__init__()
        self.db = db
        self.scope = scope


def _by_key(rows: Iterable[Any], key: str, keys: Sequence[Any]) -> list[Any]:
    found = {row[key]: row for row in rows}
    return [found.get(k) for k in keys]


def _grouped(rows: Iterable[Any], key: str, keys: Sequence[Any]) -> list[list[Any]]:
    groups: dict[Any, list[Any]] = defaultdict(list)
    for row in rows:
        groups[row[key]].append(row)
    return [groups.get(k, []) for k in keys]


class ForeignerByIdLoader(_ScopedLoader):
    async def batch_load_fn(self, ids: Sequence[int]) -> list[Any]:
        held = row_ids(ids)
        if not held:
            return [None] * len(ids)
        rows = await self.db.all(foreigner_select().where(self.scope, Foreigner.id.in_(held)))
        return _by_key(rows, "id", ids)


class AreaByCodeLoader(_ScopedLoader):
    async def batch_load_fn(self, codes: Sequence[str]) -> list[Any]:
        rows = await self.db.all(select(Area).where(self.scope, Area.code.in_(codes)))
        return _by_key(rows, "code", codes)


class AreaChildrenLoader(_ScopedLoader):
    async def batch_load_fn(self, codes: Sequence[str]) -> list[list[Any]]:
        statement = (
            select(Area).where(self.scope, Area.parent_code.in_(codes)).order_by(Area.code)
        )
        return _grouped(await self.db.all(statement), "parent_code", codes)


class _LocatedLoader(_ScopedLoader):
    """Rows of a located type, at the location precision the caller may see."""

    def __init__(self, db: Database, scope: Condition,
                 precision: LocationPrecision | None) -> None:
        super().__init__(db, scope)
        self.precision = precision


class ReportByIdLoader(_LocatedLoader):
    async def batch_load_fn(self, ids: Sequence[int]) -> list[Any]:
        held = row_ids(ids)
        if not held:
            return [None] * len(ids)
        statement = report_select(self.precision).where(self.scope, Report.id.in_(held))
        rows = await self.db.all(statement)
        return _by_key(rows, "id", ids)


class ActivityByIdLoader(_LocatedLoader):
    async def batch_load_fn(self, ids: Sequence[int]) -> list[Any]:
        held = row_ids(ids)
        if not held:
            return [None] * len(ids)
        statement = activity_select(self.precision).where(self.scope,
                                                          OfficerActivity.id.in_(held))
        return _by_key(await self.db.all(statement), "id", ids)


class OfficerByIdLoader(_ScopedLoader):
    async def batch_load_fn(self, ids: Sequence[int]) -> list[Any]:
        held = row_ids(ids)
        if not held:
            return [None] * len(ids)
        rows = await self.db.all(select(Officer).where(self.scope, Officer.id.in_(held)))
        return _by_key(rows, "id", ids)


class ResidencesByForeignerLoader(DataLoader):
    """All residences of already-scoped foreigners, the current one first."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    async def batch_load_fn(self, foreigner_ids: Sequence[int]) -> list[list[Any]]:
        statement = (
            select(Residence)
            .where(Residence.foreigner_id.in_(foreigner_ids))
            .order_by(Residence.foreigner_id, Residence.valid_to.is_not(None),
                      Residence.valid_from.desc())
        )
        return _grouped(await self.db.all(statement), "foreigner_id", foreigner_ids)


class PermitsByForeignerLoader(DataLoader):
    """All stay permits of already-scoped foreigners, newest first."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    async def batch_load_fn(self, foreigner_ids: Sequence[int]) -> list[list[Any]]:
        statement = (
            select(StayPermit)
            .where(StayPermit.foreigner_id.in_(foreigner_ids))
            .order_by(StayPermit.foreigner_id, StayPermit.issued_on.desc())
        )
        return _grouped(await self.db.all(statement), "foreigner_id", foreigner_ids)


def _codes_by_level(codes: Sequence[str]) -> dict[str, list[str]]:
    by_level: dict[str, list[str]] = defaultdict(list)
    for code in codes:
        try:
            by_level[level_of(code)].append(code)
        except AreaCodeError:
            continue
    return by_level


class ForeignerCountByAreaLoader(DataLoader):
    """Foreigners whose current residence lies in each area: COUNT … GROUP BY, one per level.

    Callers pass only areas already in the principal's scope; every residence
    inside such an area is inside the principal's jurisdiction too.
    """

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    async def batch_load_fn(self, codes: Sequence[str]) -> list[int]:
        counts: dict[str, int] = {}
        for level, level_codes in _codes_by_level(codes).items():
            column = getattr(Residence, f"{level}_code")
            statement = (
                select(column.label("code"), func.count().label("n"))
                .where(Residence.valid_to.is_(None), column.in_(level_codes))
                .group_by(column)
            )
            counts.update({row["code"]: int(row["n"]) for row in await self.db.all(statement)})
        return [counts.get(code, 0) for code in codes]


class BreakdownByAreaLoader(DataLoader):
    """Counts per area broken down by a column (nationality, permit type)."""

    def __init__(self, db: Database, dimension: str) -> None:
        super().__init__()
        self.db = db
        self.dimension = dimension

    def _column(self) -> Any:
        if self.dimension == "nationality":
            return Foreigner.nationality
        return StayPermit.permit_type

    async def batch_load_fn(self, codes: Sequence[str]) -> list[list[tuple[str, int]]]:
        buckets: dict[str, list[tuple[str, int]]] = defaultdict(list)
        key = self._column()
        for level, level_codes in _codes_by_level(codes).items():
            area_column = getattr(Residence, f"{level}_code")
            statement = (
                select(area_column.label("code"), key.label("key"), func.count().label("n"))
                .select_from(Residence)
                .join(Foreigner, Foreigner.id == Residence.foreigner_id)
                .outerjoin(StayPermit, (StayPermit.foreigner_id == Foreigner.id)
                           & StayPermit.is_current.is_(True))
                .where(Residence.valid_to.is_(None), area_column.in_(level_codes))
                .group_by(area_column, key)
                .order_by(area_column, func.count().desc(), key)
            )
            for row in await self.db.all(statement):
                buckets[row["code"]].append((row["key"] or "unknown", int(row["n"])))
        return [buckets.get(code, []) for code in codes]


class UnavailableEntity:
    """The registry could not answer for this one record (a per-entry error): a value, not
    an exception, so the DataLoader does not fail the other records' loads with it."""

    __slots__ = ("error",)

    def __init__(self, error: IdentityUnavailableError) -> None:
        self.error = error


class IdentityLoader(DataLoader):
    """Identity from the registry. A key is an entity and the registry fields wanted of it;
    each batch is ONE upstream `_entities` request selecting, per type, the union of the
    fields its keys want (aliases at one level selecting different identity fields still
    share one request). A registry that cannot answer fails the whole batch with
    `IdentityUnavailableError`."""

    def __init__(self, source: IdentitySource, request_id: str) -> None:
        super().__init__()
        self.source = source
        self.request_id = request_id

    async def batch_load_fn(self, keys: Sequence[tuple[EntityKey, frozenset[str]]]
                            ) -> list[Any]:
        return await self.fetch(keys)

    async def fetch(self, keys: Sequence[tuple[EntityKey, frozenset[str]]]) -> list[Any]:
        """The same request without the loader (a page knows all its keys at once)."""
        selections: dict[str, set[str]] = defaultdict(set)
        for entity, fields in keys:
            selections[entity.type_name] |= fields
        entities = list(dict.fromkeys(entity for entity, _fields in keys))
        answers = await self.source.entities(
            entities, {t: frozenset(f) for t, f in selections.items()}, self.request_id)
        found = {entity: (UnavailableEntity(answer)
                          if isinstance(answer, IdentityUnavailableError) else answer)
                 for entity, answer in zip(entities, answers, strict=True)}
        return [found[entity] for entity, _fields in keys]


class Loaders:
    """The loaders of one request, each bound to the principal's scopes."""

    def __init__(self, db: Database, scopes: dict[str, Condition],
                 precision: Mapping[str, LocationPrecision] | None = None,
                 identity: IdentitySource | None = None, request_id: str = "") -> None:
        precision = precision or {}
        self.identity_source: IdentitySource = identity or UnconfiguredRegistry()
        self.request_id = request_id
        self.identity = IdentityLoader(self.identity_source, request_id)
        self.foreigner = ForeignerByIdLoader(db, scopes["Foreigner"])
        self.area = AreaByCodeLoader(db, scopes["Area"])
        self.area_children = AreaChildrenLoader(db, scopes["Area"])
        self.report = ReportByIdLoader(db, scopes["Report"], precision.get("Report"))
        self.activity = ActivityByIdLoader(db, scopes["Activity"], precision.get("Activity"))
        self.officer = OfficerByIdLoader(db, scopes["Officer"])
        self.residences = ResidencesByForeignerLoader(db)
        self.permits = PermitsByForeignerLoader(db)
        self.foreigner_count = ForeignerCountByAreaLoader(db)
        self.by_nationality = BreakdownByAreaLoader(db, "nationality")
        self.by_permit_type = BreakdownByAreaLoader(db, "permit_type")
