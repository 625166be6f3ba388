"""Deterministic synthetic demo data for Kota Administrasi Jakarta Selatan.

Everything is drawn from `random.Random` streams derived from one integer seed, so a
given `(seed, foreigners, today)` always yields the same rows — except the reports'
receipt codes: a receipt code is the capability to read a report's status, so it comes
from the CSPRNG (`secrets`), never from the public default seed. `today` only anchors
dates (permit expiry, report and activity times) so that "expiring soon" and "the
last 60 days" stay meaningful whenever the demo is seeded.

Each part of the data (area tree, officers, foreigners, reports, activities) draws
from its own stream so that, e.g., the area tree and the officers do not change when
the number of foreigners does.

Rows are built as plain dicts with explicit integer ids (so references are known
without round trips) and bulk-inserted in chunks, which keeps 100 000 foreigners
well within a minute on SQLite.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import string
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from policies import Policy
from policies.area_codes import located_codes
from policies.principal import dev_subject
from resolvers.commands import new_receipt_code
from resolvers.jakarta_selatan import CITY_CODE, CITY_NAME, KECAMATAN, Kecamatan, Kelurahan
from resolvers.models import (
    Area,
    Base,
    EventOutbox,
    Foreigner,
    Officer,
    OfficerActivity,
    Report,
    Residence,
    StayPermit,
)

DEFAULT_SEED = 20261128
# The issuer of development tokens (the default `SISADA_JWT_ISSUER`): the demo data's
# reports are owned by the principals `sisada token` mints.
DEV_ISSUER = "sisada-dev"
DEFAULT_FOREIGNERS = 3000
CHUNK_SIZE = 5000

OFFICE_NAME = "Kantor Imigrasi Kelas I Jakarta Selatan"
SETIABUDI = "31.74.02"

PERMIT_TYPES: tuple[str, ...] = ("KITAS", "KITAP", "ITK")
PERMIT_STATUSES: tuple[str, ...] = ("active", "expired", "revoked")
SPONSOR_TYPES: tuple[str, ...] = ("company", "spouse", "school", "self", "religious")
REPORT_CATEGORIES: tuple[str, ...] = (
    "overstay",
    "illegal_work",
    "suspicious_activity",
    "address_change",
    "other",
)
REPORT_STATUSES: tuple[str, ...] = ("received", "triaged", "investigating", "closed")
ACTIVITY_KINDS: tuple[str, ...] = (
    "document_check",
    "home_visit",
    "report_follow_up",
    "joint_operation",
)
OFFICER_COUNT = 30
# Officer 1 is a regular field officer (the default demo officer); 2 and 3 supervise.
SUPERVISOR_IDS: frozenset[int] = frozenset({2, 3})

_UTC = dt.UTC


class SeedError(RuntimeError):
    """The database cannot be seeded (e.g. it already holds data)."""


@dataclass(frozen=True)
class SeedSummary:
    areas: int
    foreigners: int
    permits: int
    residences: int
    officers: int
    reports: int
    activities: int


@dataclass
class SeedRows:
    """All generated rows, per table, in foreign-key-safe insertion order."""

    areas: list[dict[str, Any]] = field(default_factory=list)
    foreigners: list[dict[str, Any]] = field(default_factory=list)
    permits: list[dict[str, Any]] = field(default_factory=list)
    residences: list[dict[str, Any]] = field(default_factory=list)
    officers: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    # Identity, for the central registry only (never inserted here): keyed by the same ids
    # as `foreigners` and `permits`.
    persons: list[dict[str, Any]] = field(default_factory=list)
    permit_documents: list[dict[str, Any]] = field(default_factory=list)

    def tables(self) -> list[tuple[type[Base], list[dict[str, Any]]]]:
        return [
            (Area, self.areas),
            (Foreigner, self.foreigners),
            (StayPermit, self.permits),
            (Residence, self.residences),
            (Officer, self.officers),
            (Report, self.reports),
            (OfficerActivity, self.activities),
        ]

    def summary(self) -> SeedSummary:
        return SeedSummary(
            areas=len(self.areas),
            foreigners=len(self.foreigners),
            permits=len(self.permits),
            residences=len(self.residences),
            officers=len(self.officers),
            reports=len(self.reports),
            activities=len(self.activities),
        )


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class Submitter:
    """Who submitted some of the demo reports: a role whose area is at `level`, `share`
    percent of all reports (policy data: `demo_submitter` in roles.polar)."""

    role: str
    level: str
    share: int


def policy_submitters(policy: Policy | None = None) -> tuple[Submitter, ...]:
    policy = policy or Policy()
    return tuple(Submitter(role, level, share) for role, level, share in policy.demo_submitters())


# Receives the identity of the seeded people: (persons, permit documents), for the registry.
IdentityWriter = Callable[[list[dict[str, Any]], list[dict[str, Any]]], Awaitable[None]]
# Told (rows written, rows in all) as the seed goes: the demo shows it instead of silence.
SeedProgress = Callable[[int, int], None]


async def seed_database(
    engine: AsyncEngine,
    foreigners: int = DEFAULT_FOREIGNERS,
    seed: int = DEFAULT_SEED,
    today: dt.date | None = None,
    *,
    submitters: Sequence[Submitter] | None = None,
    issuer: str = DEV_ISSUER,
    write_identity: IdentityWriter | None = None,
    progress: SeedProgress | None = None,
) -> SeedSummary:
    """Fill empty tables with synthetic demo data; raise `SeedError` if already seeded.

    The office database gets no identity: `write_identity` receives it (for the registry)
    before the office's rows commit, so a registry that refuses it leaves both empty. Without
    one, the identity is dropped (an office-only seed, as for the benchmarks).
    `submitters` default to the shipped policy's; `issuer` is the one whose development
    tokens own the submitted reports."""
    if foreigners < 0:
        raise ValueError("foreigners must be >= 0")
    today = today or dt.date.today()
    async with engine.begin() as conn:
        if (await conn.execute(select(Area.code).limit(1))).first() is not None:
            raise SeedError("database already seeded")
        rows = build_seed_rows(foreigners=foreigners, seed=seed, today=today,
                               submitters=submitters, issuer=issuer)
        identity = len(rows.persons) + len(rows.permit_documents)
        total = sum(len(table_rows) for _, table_rows in rows.tables()) + identity
        written = 0
        for model, table_rows in rows.tables():
            for start in range(0, len(table_rows), CHUNK_SIZE):
                chunk = table_rows[start : start + CHUNK_SIZE]
                await conn.execute(insert(model), chunk)
                written += len(chunk)
                if progress is not None:
                    progress(written, total)
        if write_identity is not None:
            await write_identity(rows.persons, rows.permit_documents)
        if progress is not None:
            progress(total, total)
        if conn.dialect.name == "postgresql":
            await _reset_sequences(conn)
        # Fresh planner statistics: after a bulk load the planner would otherwise guess a
        # handful of rows per table and pick plans that scan whole tables.
        await conn.execute(text("ANALYZE"))
    return rows.summary()


async def clear_seeded_data(engine: AsyncEngine) -> int:
    """Delete every row a seed writes (and the outbox's events about them), for reseeding;
    returns how many foreigners there were. The access trail stays: it is append-only, and
    no command deletes what its retention covers (its entries keep naming the old ids)."""
    async with engine.begin() as conn:
        foreigners = await conn.scalar(select(func.count()).select_from(Foreigner)) or 0
        await conn.execute(delete(EventOutbox))
        # Referencing tables first: the reverse of the insertion order.
        for model, _ in reversed(SeedRows().tables()):
            await conn.execute(delete(model))
    return foreigners


def build_seed_rows(
    foreigners: int = DEFAULT_FOREIGNERS,
    seed: int = DEFAULT_SEED,
    today: dt.date | None = None,
    *,
    submitters: Sequence[Submitter] | None = None,
    issuer: str = DEV_ISSUER,
) -> SeedRows:
    """Generate every row without touching a database (also handy for tests)."""
    today = today or dt.date.today()
    submitters = policy_submitters() if submitters is None else submitters
    rows = SeedRows()
    tree = _build_area_tree(_stream(seed, "areas"))
    rows.areas = tree.rows
    rows.officers = _build_officers(_stream(seed, "officers"))
    people = _build_foreigners(_stream(seed, "foreigners"), foreigners, tree, today, rows)
    _build_reports(_stream(seed, "reports"), tree, people, today, rows,
                   _Reporters(tuple(submitters), issuer))
    _build_activities(_stream(seed, "activities"), tree, people, today, rows)
    _move_identity(rows)
    return rows


# Generated with the rest (so the data stays what a seed always gave), then moved out.
PERSON_FIELDS = ("full_name", "passport_number", "birth_date", "photo_url")
PERMIT_DOCUMENT_FIELDS = ("number", "sponsor_name")


def _move_identity(rows: SeedRows) -> None:
    """Move identity from the office's rows to the registry's (SPEC: the office database
    holds no identity at all); the office keeps the age band's base year."""
    for row in rows.foreigners:
        person = {"id": row["id"], **{name: row.pop(name) for name in PERSON_FIELDS}}
        row["age_base_year"] = age_base_year(person["birth_date"])
        rows.persons.append(person)
    for row in rows.permits:
        rows.permit_documents.append({"id": row["id"], "person_id": row["foreigner_id"],
                                      **{name: row.pop(name) for name in PERMIT_DOCUMENT_FIELDS}})


def age_base_year(birth_date: dt.date) -> int:
    """The year of the first 1 January on which the person was 0: the age on 1 January of
    year Y is Y - age_base_year."""
    return birth_date.year + (0 if (birth_date.month, birth_date.day) == (1, 1) else 1)


# --------------------------------------------------------------------------- plumbing


def _stream(seed: int, part: str) -> random.Random:
    # String seeds are hashed with SHA-512 by `random`, so this is stable across runs
    # and Python processes (no PYTHONHASHSEED dependence).
    return random.Random(f"sisada:{seed}:{part}")


async def _reset_sequences(conn: AsyncConnection) -> None:
    # Ids were assigned explicitly, so the serial sequences still sit at 1; move them
    # past the data so rows inserted later by the app do not collide.
    for model in (Foreigner, StayPermit, Residence, Officer, Report, OfficerActivity):
        table = model.__tablename__
        await conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) "
                f"FROM {table} HAVING max(id) IS NOT NULL"
            )
        )


def _weighted(rng: random.Random, table: Sequence[tuple[Any, float]]) -> Any:
    values, weights = zip(*table, strict=True)
    return rng.choices(values, weights=weights, k=1)[0]


def _unique(make: Callable[[], str], seen: set[str]) -> str:
    while True:
        value = make()
        if value not in seen:
            seen.add(value)
            return value


def _pattern(rng: random.Random, pattern: str) -> str:
    """Fill `#` with a digit and `@` with an uppercase letter; keep other characters."""
    out = []
    for ch in pattern:
        if ch == "#":
            out.append(rng.choice(string.digits))
        elif ch == "@":
            out.append(rng.choice(string.ascii_uppercase))
        else:
            out.append(ch)
    return "".join(out)


def _midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=_UTC)


def _seconds_before(rng: random.Random, end: dt.datetime, max_days: int) -> dt.datetime:
    return end - dt.timedelta(seconds=rng.randrange(1, max_days * 86400))


# --------------------------------------------------------------------------- area tree


@dataclass(slots=True)
class _Rt:
    code: str
    rw_no: int
    rt_no: int
    kelurahan: Kelurahan
    kecamatan: Kecamatan
    latitude: float
    longitude: float
    streets: tuple[str, ...]


@dataclass
class _AreaTree:
    rows: list[dict[str, Any]]
    rts: list[_Rt]
    # Cumulative weights over `rts` for where foreigners live (expat areas weigh more).
    cum_weights: list[float]
    by_code: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.by_code = {rt.code: i for i, rt in enumerate(self.rts)}

    def pick(self, rng: random.Random) -> int:
        return rng.choices(range(len(self.rts)), cum_weights=self.cum_weights, k=1)[0]

    def indexes_in(self, kecamatan_code: str) -> list[int]:
        return [i for i, rt in enumerate(self.rts) if rt.kecamatan.code == kecamatan_code]


# Relative share of foreign residents per kecamatan: the CBD and expat neighbourhoods
# (Kuningan/Setiabudi, Kebayoran Baru, Kemang/Mampang, Cilandak) dominate.
_KECAMATAN_WEIGHT: dict[str, float] = {
    "31.74.01": 1.2,  # Tebet
    "31.74.02": 6.0,  # Setiabudi
    "31.74.03": 3.0,  # Mampang Prapatan
    "31.74.04": 1.2,  # Pasar Minggu
    "31.74.05": 1.5,  # Kebayoran Lama
    "31.74.06": 3.5,  # Cilandak
    "31.74.07": 4.5,  # Kebayoran Baru
    "31.74.08": 1.0,  # Pancoran
    "31.74.09": 0.5,  # Jagakarsa
    "31.74.10": 0.8,  # Pesanggrahan
}
# Apartment towers: a few RTs per expat kecamatan concentrate many foreigners, so that
# RT-level counts above the small-cell threshold exist even in the default demo.
_HOTSPOTS_PER_EXPAT_KECAMATAN = 3
_HOTSPOT_FACTOR = 12.0
_EXPAT_KECAMATAN = ("31.74.02", "31.74.03", "31.74.06", "31.74.07")

_STREETS: tuple[str, ...] = (
    "Kemang Raya", "Gatot Subroto", "HR Rasuna Said", "Jenderal Sudirman", "Casablanca",
    "Prof. Dr. Satrio", "Kapten Tendean", "Wolter Monginsidi", "Senopati", "Suryo",
    "Gunawarman", "Bangka Raya", "Cipete Raya", "RS Fatmawati", "Pangeran Antasari",
    "TB Simatupang", "Ampera Raya", "Warung Buncit Raya", "Pejaten Raya", "Ragunan Raya",
    "Margasatwa", "Lebak Bulus Raya", "Pondok Labu Raya", "Haji Nawi", "Radio Dalam",
    "Panglima Polim", "Sisingamangaraja", "Melawai Raya", "Kyai Maja", "Ciputat Raya",
    "Ciledug Raya", "Veteran Raya", "Bintaro Permai", "Arteri Permata Hijau", "Tebet Raya",
    "Prof. Dr. Soepomo", "Dr. Saharjo", "Minangkabau", "Kalibata Raya", "Duren Tiga Raya",
    "Raya Pasar Minggu", "Lenteng Agung Raya", "Moh. Kahfi II", "Karet Pasar Baru",
    "Setiabudi Tengah", "Halimun", "Benda", "Taman Kemang", "Wijaya I", "Brawijaya",
    "Darmawangsa Raya", "Patra Kuningan", "Denpasar Raya", "Karang Asem", "Sultan Hasanudin",
    "Hang Lekir", "Gandaria Tengah", "Metro Pondok Indah", "Alam Segar", "Cilandak KKO",
)


def _build_area_tree(rng: random.Random) -> _AreaTree:
    rows: list[dict[str, Any]] = [
        {"code": CITY_CODE, "name": CITY_NAME, "level": "city", "parent_code": None}
    ]
    rts: list[_Rt] = []
    for kec in KECAMATAN:
        rows.append({"code": kec.code, "name": kec.name, "level": "kecamatan",
                     "parent_code": CITY_CODE})
    for kec in KECAMATAN:
        for kel in kec.kelurahan:
            rows.append({"code": kel.code, "name": kel.name, "level": "kelurahan",
                         "parent_code": kec.code})
            rts.extend(_build_kelurahan(rng, kec, kel, rows))
    return _AreaTree(rows=rows, rts=rts, cum_weights=_residence_weights(rng, rts))


def _build_kelurahan(
    rng: random.Random, kec: Kecamatan, kel: Kelurahan, rows: list[dict[str, Any]]
) -> list[_Rt]:
    # Kelurahan sit within ~0.006 deg of the kecamatan centre, RTs within ~0.002 of that,
    # and residences jitter another ~0.002: points stay within ±0.01 of the centre.
    kel_lat = kec.latitude + rng.uniform(-0.006, 0.006)
    kel_lon = kec.longitude + rng.uniform(-0.006, 0.006)
    streets = (f"{kel.name} Raya", f"{kel.name} Dalam", *rng.sample(_STREETS, 4))
    rts = []
    for rw_no in range(1, rng.randint(4, 12) + 1):
        rw_code = f"{kel.code}.{rw_no:02d}"
        rows.append({"code": rw_code, "name": f"RW {rw_no:02d}", "level": "rw",
                     "parent_code": kel.code})
        for rt_no in range(1, rng.randint(4, 10) + 1):
            rt_code = f"{rw_code}.{rt_no:03d}"
            rows.append({"code": rt_code, "name": f"RT {rt_no:03d}", "level": "rt",
                         "parent_code": rw_code})
            rts.append(_Rt(
                code=rt_code, rw_no=rw_no, rt_no=rt_no, kelurahan=kel, kecamatan=kec,
                latitude=kel_lat + rng.uniform(-0.002, 0.002),
                longitude=kel_lon + rng.uniform(-0.002, 0.002),
                streets=tuple(rng.sample(streets, 2)),
            ))
    return rts


def _residence_weights(rng: random.Random, rts: list[_Rt]) -> list[float]:
    per_kecamatan: dict[str, int] = {}
    for rt in rts:
        per_kecamatan[rt.kecamatan.code] = per_kecamatan.get(rt.kecamatan.code, 0) + 1
    # Log-normal attractiveness gives the uneven, clustered counts of real neighbourhoods.
    weights = [
        _KECAMATAN_WEIGHT[rt.kecamatan.code] / per_kecamatan[rt.kecamatan.code]
        * rng.lognormvariate(0.0, 0.8)
        for rt in rts
    ]
    for kec_code in _EXPAT_KECAMATAN:
        candidates = [i for i, rt in enumerate(rts) if rt.kecamatan.code == kec_code]
        for i in rng.sample(candidates, _HOTSPOTS_PER_EXPAT_KECAMATAN):
            weights[i] *= _HOTSPOT_FACTOR
    return list(itertools.accumulate(weights))


def _street_address(rng: random.Random, rt: _Rt) -> str:
    street = rng.choice(rt.streets)
    return (f"Jl. {street} No. {rng.randint(1, 120)}, RT {rt.rt_no:03d}/RW {rt.rw_no:02d}, "
            f"{rt.kelurahan.name}")


def _point_near(rng: random.Random, rt: _Rt, spread: float = 0.002) -> tuple[float, float]:
    return (round(rt.latitude + rng.uniform(-spread, spread), 6),
            round(rt.longitude + rng.uniform(-spread, spread), 6))


# --------------------------------------------------------------------------- officers

_ID_MALE = ("Agus", "Budi", "Hendra", "Yudi", "Fajar", "Rizky", "Eko", "Bambang", "Wahyu",
            "Indra", "Arief", "Andi", "Teguh", "Galih", "Aditya", "Bayu", "Dimas", "Rudi")
_ID_FEMALE = ("Dewi", "Siti", "Rina", "Putri", "Ayu", "Dian", "Sri", "Lestari", "Ratna",
              "Yuliana", "Mega", "Intan", "Fitri", "Nurul", "Wulan", "Anisa")
_ID_FAMILY = ("Santoso", "Wibowo", "Pratama", "Saputra", "Hidayat", "Kusuma", "Nugroho",
              "Siregar", "Nasution", "Simanjuntak", "Harahap", "Lubis", "Setiawan",
              "Purnomo", "Susanto", "Wijaya", "Gunawan", "Hakim", "Firmansyah", "Maulana",
              "Permana", "Sembiring", "Tambunan", "Manurung", "Rahman", "Hutapea")

_SECTIONS = (
    "Seksi Intelijen dan Penindakan Keimigrasian",
    "Seksi Izin Tinggal Keimigrasian",
    "Seksi Teknologi Informasi dan Komunikasi Keimigrasian",
)
_FIELD_RANKS = (
    ("Analis Keimigrasian Ahli Pertama", 5),
    ("Analis Keimigrasian Ahli Muda", 2),
    ("Pemeriksa Keimigrasian Terampil", 3),
    ("Pemeriksa Keimigrasian Mahir", 3),
    ("Pemeriksa Keimigrasian Penyelia", 1),
)


def _indonesian_name(rng: random.Random) -> str:
    given = rng.choice(_ID_MALE if rng.random() < 0.5 else _ID_FEMALE)
    return f"{given} {rng.choice(_ID_FAMILY)}"


def _build_officers(rng: random.Random) -> list[dict[str, Any]]:
    names: set[str] = set()
    officers = []
    for officer_id in range(1, OFFICER_COUNT + 1):
        name = _unique(lambda: _indonesian_name(rng), names)
        if officer_id == 2:
            rank, unit = "Analis Keimigrasian Ahli Madya", OFFICE_NAME
        elif officer_id == 3:
            rank, unit = "Analis Keimigrasian Ahli Muda", f"{OFFICE_NAME}, {_SECTIONS[0]}"
        elif officer_id == 1:
            rank, unit = "Analis Keimigrasian Ahli Pertama", f"{OFFICE_NAME}, {_SECTIONS[0]}"
        else:
            rank = _weighted(rng, _FIELD_RANKS)
            section = _weighted(rng, list(zip(_SECTIONS, (6, 3, 1), strict=True)))
            unit = f"{OFFICE_NAME}, {section}"
        officers.append({"id": officer_id, "name": name, "rank": rank, "unit": unit,
                         "is_supervisor": officer_id in SUPERVISOR_IDS,
                         "office_area_code": CITY_CODE})
    return officers


def _field_officer_ids() -> list[int]:
    return [i for i in range(1, OFFICER_COUNT + 1) if i not in SUPERVISOR_IDS]


# --------------------------------------------------------------------------- foreigners


@dataclass(frozen=True)
class _NameGroup:
    male: tuple[str, ...]
    female: tuple[str, ...]
    family: tuple[str, ...]
    family_first: bool = False
    patronymic: bool = False  # "Given bin/binti Father" (Malay usage)


def _names(text_: str) -> tuple[str, ...]:
    return tuple(text_.split(","))


_NAME_GROUPS: dict[str, _NameGroup] = {
    "chinese": _NameGroup(
        _names("Wei,Jun,Hao,Lei,Jian,Ming,Tao,Yang,Bo,Chen"),
        _names("Li,Mei,Xiu,Ying,Fang,Jing,Hui,Lan,Yan,Xin"),
        _names("Wang,Li,Zhang,Liu,Chen,Yang,Huang,Zhao,Wu,Zhou,Xu,Sun,Lin,Tan"),
        family_first=True,
    ),
    "korean": _NameGroup(
        _names("Min-jun,Seo-jun,Ji-hoon,Hyun-woo,Dong-hyun,Sung-min,Jae-won"),
        _names("Seo-yeon,Ji-woo,Min-seo,Ha-eun,Soo-ah,Ji-yeon,Eun-ji"),
        _names("Kim,Lee,Park,Choi,Jung,Kang,Cho,Yoon,Jang,Lim,Han"),
        family_first=True,
    ),
    "japanese": _NameGroup(
        _names("Haruto,Takumi,Kenji,Hiroshi,Daiki,Yuto,Kazuki,Shota,Ryo"),
        _names("Yui,Aoi,Sakura,Haruka,Yuki,Misaki,Nanami,Akiko,Emi"),
        _names("Sato,Suzuki,Takahashi,Tanaka,Watanabe,Ito,Yamamoto,Nakamura,Kobayashi"),
        family_first=True,
    ),
    "vietnamese": _NameGroup(
        _names("Minh,Tuan,Hung,Duc,Long,Quang,Thanh"),
        _names("Linh,Huong,Thu,Mai,Lan,Trang,Ngoc"),
        _names("Nguyen,Tran,Le,Pham,Hoang,Vu,Dang"),
        family_first=True,
    ),
    "indian": _NameGroup(
        _names("Arjun,Rahul,Vikram,Amit,Rohan,Sanjay,Karthik,Anil,Suresh"),
        _names("Priya,Ananya,Kavya,Deepa,Neha,Pooja,Lakshmi,Sunita,Meera"),
        _names("Sharma,Patel,Iyer,Reddy,Nair,Gupta,Singh,Kumar,Menon,Rao"),
    ),
    "south_asian": _NameGroup(
        _names("Muhammad,Imran,Faisal,Tariq,Rashed,Kamal,Hasan"),
        _names("Ayesha,Fatima,Nusrat,Sadia,Farzana,Rubina"),
        _names("Khan,Ahmed,Hossain,Rahman,Chowdhury,Malik,Qureshi"),
    ),
    "anglo": _NameGroup(
        _names("James,John,Michael,David,Daniel,Matthew,Andrew,Thomas,Ryan,Benjamin"),
        _names("Sarah,Emily,Jessica,Emma,Olivia,Rachel,Laura,Hannah,Chloe,Grace"),
        _names("Smith,Johnson,Brown,Williams,Taylor,Wilson,Anderson,Thompson,Walker,"
               "Clarke,Mitchell,Harris"),
    ),
    "malay": _NameGroup(
        _names("Ahmad,Muhammad,Azlan,Faizal,Hafiz,Syafiq,Rizal"),
        _names("Nurul,Siti,Aisyah,Farah,Aminah,Zulaikha,Haslinda"),
        _names("Ismail,Abdullah,Hassan,Yusof,Ibrahim,Rahman,Osman"),
        patronymic=True,
    ),
    "filipino": _NameGroup(
        _names("Jose,Mark,John Paul,Rodel,Christian,Jerome,Ramon"),
        _names("Maria,Kristine,Joy,Angelica,Rowena,Maricel,Jasmine"),
        _names("Santos,Reyes,Cruz,Bautista,Garcia,Mendoza,Dela Cruz,Villanueva"),
    ),
    "thai": _NameGroup(
        _names("Somchai,Anan,Kittipong,Prasert,Nattapong"),
        _names("Siriporn,Kanya,Pimchanok,Malee,Ratana"),
        _names("Saetang,Srisuk,Chaiyaphum,Wongsawat,Thongchai"),
    ),
    "dutch": _NameGroup(
        _names("Daan,Bram,Jeroen,Pieter,Sander,Maarten"),
        _names("Anouk,Sanne,Femke,Lotte,Marieke,Eva"),
        _names("de Jong,Jansen,de Vries,van den Berg,Bakker,Visser,Smit,Meijer"),
    ),
    "german": _NameGroup(
        _names("Lukas,Jonas,Felix,Stefan,Matthias,Tobias"),
        _names("Anna,Julia,Katharina,Lena,Sabine,Laura"),
        _names("Müller,Schmidt,Schneider,Fischer,Weber,Wagner,Becker,Hoffmann"),
    ),
    "french": _NameGroup(
        _names("Louis,Hugo,Julien,Nicolas,Pierre,Antoine"),
        _names("Camille,Léa,Chloé,Manon,Claire,Sophie"),
        _names("Martin,Bernard,Dubois,Durand,Lefebvre,Moreau,Laurent,Girard"),
    ),
    "russian": _NameGroup(
        _names("Aleksandr,Dmitry,Sergey,Ivan,Mikhail,Andrey"),
        _names("Anastasia,Ekaterina,Olga,Natalia,Maria,Svetlana"),
        _names("Ivanov,Smirnov,Kuznetsov,Popov,Volkov,Sokolov,Morozov"),
    ),
    "nigerian": _NameGroup(
        _names("Chinedu,Emeka,Oluwaseun,Tunde,Ifeanyi,Babatunde"),
        _names("Ngozi,Chiamaka,Funmilayo,Adaeze,Yetunde,Amaka"),
        _names("Okafor,Adeyemi,Okonkwo,Balogun,Eze,Nwosu,Abubakar"),
    ),
    "turkish": _NameGroup(
        _names("Mehmet,Mustafa,Emre,Burak,Ahmet,Murat"),
        _names("Ayşe,Elif,Zeynep,Fatma,Merve,Esra"),
        _names("Yilmaz,Kaya,Demir,Sahin,Celik,Yildiz,Ozturk"),
    ),
    "arabic": _NameGroup(
        _names("Mohammed,Abdullah,Omar,Khalid,Ali,Yousef,Ahmed"),
        _names("Fatimah,Noura,Maryam,Aisha,Huda,Sara"),
        _names("Al-Harbi,Al-Qahtani,Al-Amoudi,Al-Ghamdi,Al-Saqqaf,Haddad,Mansour"),
    ),
    "italian": _NameGroup(
        _names("Marco,Luca,Giuseppe,Andrea,Matteo"),
        _names("Giulia,Francesca,Chiara,Sofia,Elena"),
        _names("Rossi,Russo,Ferrari,Esposito,Bianchi,Romano"),
    ),
    "iberian": _NameGroup(
        _names("João,Carlos,Miguel,Pedro,Rafael,Diego"),
        _names("Ana,Maria,Beatriz,Lucía,Fernanda,Carla"),
        _names("da Silva,Santos,Pereira,Fernández,García,Oliveira,Soares"),
    ),
}

# (ISO alpha-3, weight, name group, passport number pattern): roughly the mix of
# foreign residents in South Jakarta, East Asian professionals first.
_NATIONALITIES: tuple[tuple[str, float, str, str], ...] = (
    ("CHN", 20.0, "chinese", "E########"),
    ("KOR", 12.0, "korean", "M########"),
    ("JPN", 11.0, "japanese", "T@#######"),
    ("IND", 7.0, "indian", "@#######"),
    ("USA", 6.0, "anglo", "A########"),
    ("AUS", 5.0, "anglo", "P@#######"),
    ("MYS", 5.0, "malay", "A########"),
    ("GBR", 4.0, "anglo", "5########"),
    ("PHL", 4.0, "filipino", "P#######@"),
    ("TWN", 3.0, "chinese", "3########"),
    ("SGP", 3.0, "chinese", "K#######@"),
    ("NLD", 2.0, "dutch", "N@#######"),
    ("DEU", 2.0, "german", "C@@######"),
    ("FRA", 2.0, "french", "##@@#####"),
    ("RUS", 1.5, "russian", "75#######"),
    ("CAN", 1.5, "anglo", "@@######"),
    ("VNM", 1.5, "vietnamese", "C#######"),
    ("NGA", 1.0, "nigerian", "A########"),
    ("TUR", 1.0, "turkish", "U########"),
    ("THA", 1.0, "thai", "@@#######"),
    ("PAK", 1.0, "south_asian", "@@#######"),
    ("BGD", 0.8, "south_asian", "@@#######"),
    ("SAU", 0.8, "arabic", "@#######"),
    ("YEM", 0.6, "arabic", "0#######"),
    ("ITA", 0.8, "italian", "Y@#######"),
    ("NZL", 0.6, "anglo", "L@######"),
    ("ZAF", 0.5, "anglo", "A########"),
    ("ESP", 0.5, "iberian", "PA@######"),
    ("BRA", 0.4, "iberian", "@@######"),
    ("TLS", 0.8, "iberian", "T#######"),
)
_NATIONALITY_WEIGHTS = list(itertools.accumulate(n[1] for n in _NATIONALITIES))

_PERMIT_TYPE_WEIGHTS = (("KITAS", 60), ("KITAP", 25), ("ITK", 15))
_PERMIT_STATUS_WEIGHTS = (("active", 85), ("expired", 12), ("revoked", 3))
_PERMIT_PREFIX = {"KITAS": "2C", "KITAP": "2D", "ITK": "1B"}
_EXPIRING_SOON_SHARE = 0.08
_SPONSOR_WEIGHTS: dict[str, tuple[tuple[str, float], ...]] = {
    "KITAS": (("company", 60), ("spouse", 15), ("school", 8), ("religious", 4), ("self", 13)),
    "KITAP": (("spouse", 55), ("company", 30), ("self", 10), ("religious", 5)),
    "ITK": (("self", 55), ("company", 40), ("school", 5)),
}
_COMPANY_WORDS_A = ("Maju", "Sinar", "Mitra", "Global", "Nusantara", "Samudra", "Cahaya",
                    "Prima", "Karya", "Bumi", "Citra", "Mega", "Jaya", "Graha", "Sentosa",
                    "Hanindo", "Korindo", "Sakura", "Tianjin", "Pacific")
_COMPANY_WORDS_B = ("Abadi", "Teknologi", "Energi", "Logistik", "Konstruksi", "Digital",
                    "Manufaktur", "Kreasi", "Solusi", "Investama", "Perkasa", "Mandiri")
_SCHOOLS = ("Jakarta Intercultural School", "British School Jakarta",
            "Sekolah Pelita Harapan", "Universitas Indonesia", "Universitas Pancasila",
            "Universitas Nasional", "Binus University", "Australian Independent School",
            "Korean International School Jakarta", "Japanese School Jakarta")
_RELIGIOUS = ("Keuskupan Agung Jakarta", "Yayasan Gereja Injili Jakarta",
              "Yayasan Masjid Al-Azhar", "Yayasan Vihara Dharma Bhakti",
              "Yayasan Pondok Pesantren Darunnajah", "Persekutuan Gereja-gereja di Indonesia")


@dataclass
class _People:
    """What later generators need about each foreigner (index = foreigner id - 1)."""

    rt_index: list[int] = field(default_factory=list)
    point: list[tuple[float, float]] = field(default_factory=list)
    by_rt: dict[int, list[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rt_index)


def _build_foreigners(
    rng: random.Random, count: int, tree: _AreaTree, today: dt.date, rows: SeedRows
) -> _People:
    people = _People()
    passports: set[str] = set()
    permit_numbers: set[str] = set()
    now = _midnight_utc(today)
    rt_picks = rng.choices(range(len(tree.rts)), cum_weights=tree.cum_weights, k=count)
    for foreigner_id, rt_index in enumerate(rt_picks, start=1):
        nat, _, group, passport_pattern = rng.choices(
            _NATIONALITIES, cum_weights=_NATIONALITY_WEIGHTS, k=1)[0]
        sex = "M" if rng.random() < 0.62 else "F"
        created_at = _seconds_before(rng, now, 3000)
        rows.foreigners.append({
            "id": foreigner_id,
            "full_name": _foreign_name(rng, _NAME_GROUPS[group], sex),
            "passport_number": _unique(lambda p=passport_pattern: _pattern(rng, p), passports),
            "birth_date": _birth_date(rng, today),
            "photo_url": f"https://photos.invalid/f/{foreigner_id}.jpg",
            "nationality": nat,
            "sex": sex,
            "created_at": created_at,
        })
        _add_permits(rng, foreigner_id, today, permit_numbers, rows.permits)
        point = _add_residences(rng, foreigner_id, rt_index, created_at.date(), today, tree,
                                rows.residences)
        people.rt_index.append(rt_index)
        people.point.append(point)
        people.by_rt.setdefault(rt_index, []).append(foreigner_id)
    return people


def _foreign_name(rng: random.Random, group: _NameGroup, sex: str) -> str:
    given = rng.choice(group.male if sex == "M" else group.female)
    if group.patronymic:
        return f"{given} {'bin' if sex == 'M' else 'binti'} {rng.choice(group.male)}"
    family = rng.choice(group.family)
    return f"{family} {given}" if group.family_first else f"{given} {family}"


def _birth_date(rng: random.Random, today: dt.date) -> dt.date:
    # Working-age skew: most foreign residents are 25-50, a few retirees up to 75.
    age_days = int(rng.triangular(18.05, 75.9, 36.0) * 365.25)
    return today - dt.timedelta(days=age_days)


def _permit_duration(rng: random.Random, permit_type: str) -> int:
    if permit_type == "KITAP":
        return 5 * 365
    if permit_type == "ITK":
        return 60
    return rng.choice((365, 730))


def _permit_number(rng: random.Random, permit_type: str, issued_on: dt.date,
                   seen: set[str]) -> str:
    prefix = f"{_PERMIT_PREFIX[permit_type]}{issued_on.year % 100:02d}"
    return _unique(lambda: _pattern(rng, f"{prefix}@@####-@"), seen)


def _sponsor(rng: random.Random, permit_type: str) -> tuple[str, str | None]:
    kind = _weighted(rng, _SPONSOR_WEIGHTS[permit_type])
    if kind == "company":
        name = f"PT {rng.choice(_COMPANY_WORDS_A)} {rng.choice(_COMPANY_WORDS_B)}"
        if rng.random() < 0.4:
            name += " Indonesia"
        return kind, name
    if kind == "spouse":
        return kind, _indonesian_name(rng)
    if kind == "school":
        return kind, rng.choice(_SCHOOLS)
    if kind == "religious":
        return kind, rng.choice(_RELIGIOUS)
    return kind, None  # self-sponsored (retirement, investor visit): no sponsor name


def _current_expiry(rng: random.Random, status: str, duration: int, today: dt.date) -> dt.date:
    if status == "expired":
        return today - dt.timedelta(days=rng.randint(1, 400))
    if status == "revoked":
        return today + dt.timedelta(days=rng.randint(-200, duration))
    if rng.random() < _EXPIRING_SOON_SHARE:
        return today + dt.timedelta(days=rng.randint(1, 30))
    return today + dt.timedelta(days=rng.randint(31, max(31, duration - 1)))


def _add_permits(rng: random.Random, foreigner_id: int, today: dt.date,
                 seen: set[str], permits: list[dict[str, Any]]) -> None:
    permit_type = _weighted(rng, _PERMIT_TYPE_WEIGHTS)
    status = _weighted(rng, _PERMIT_STATUS_WEIGHTS)
    duration = _permit_duration(rng, permit_type)
    expires_on = _current_expiry(rng, status, duration, today)
    issued_on = expires_on - dt.timedelta(days=duration)
    permits.append(_permit_row(rng, len(permits) + 1, foreigner_id, permit_type, status,
                               issued_on, expires_on, seen, is_current=True))
    # Earlier permits: renewals and the KITAS that typically precedes a KITAP.
    roll = rng.random()
    older = 2 if roll < 0.10 else 1 if roll < 0.35 else 0
    for _ in range(older):
        old_type = "KITAS" if rng.random() < 0.85 else "ITK"
        old_duration = _permit_duration(rng, old_type)
        expires_on = issued_on - dt.timedelta(days=rng.randint(0, 30))
        issued_on = expires_on - dt.timedelta(days=old_duration)
        permits.append(_permit_row(rng, len(permits) + 1, foreigner_id, old_type, "expired",
                                   issued_on, expires_on, seen, is_current=False))


def _permit_row(rng: random.Random, permit_id: int, foreigner_id: int, permit_type: str,
                status: str, issued_on: dt.date, expires_on: dt.date, seen: set[str],
                *, is_current: bool) -> dict[str, Any]:
    sponsor_type, sponsor_name = _sponsor(rng, permit_type)
    return {
        "id": permit_id,
        "foreigner_id": foreigner_id,
        "number": _permit_number(rng, permit_type, issued_on, seen),
        "permit_type": permit_type,
        "status": status,
        "issued_on": issued_on,
        "expires_on": expires_on,
        "sponsor_name": sponsor_name,
        "sponsor_type": sponsor_type,
        "is_current": is_current,
    }


def _add_residences(rng: random.Random, foreigner_id: int, rt_index: int,
                    registered_on: dt.date, today: dt.date, tree: _AreaTree,
                    residences: list[dict[str, Any]]) -> tuple[float, float]:
    """Add the current residence (and maybe an earlier one); return the current point."""
    span = max(1, (today - registered_on).days)
    current_from = registered_on + dt.timedelta(days=rng.randrange(span))
    if rng.random() < 0.20:
        previous = tree.pick(rng)
        while previous == rt_index:
            previous = tree.pick(rng)
        residences.append(_residence_row(
            rng, len(residences) + 1, foreigner_id, tree.rts[previous],
            valid_from=current_from - dt.timedelta(days=rng.randint(90, 1500)),
            valid_to=current_from,
        ))
    row = _residence_row(rng, len(residences) + 1, foreigner_id, tree.rts[rt_index],
                         valid_from=current_from, valid_to=None)
    residences.append(row)
    return row["latitude"], row["longitude"]


def _residence_row(rng: random.Random, residence_id: int, foreigner_id: int, rt: _Rt, *,
                   valid_from: dt.date, valid_to: dt.date | None) -> dict[str, Any]:
    lat, lon = _point_near(rng, rt)
    return {
        "id": residence_id,
        "foreigner_id": foreigner_id,
        "street_address": _street_address(rng, rt),
        "latitude": lat,
        "longitude": lon,
        "valid_from": valid_from,
        "valid_to": valid_to,
        **located_codes(rt.code),
    }


# --------------------------------------------------------------------------- reports

_REPORT_CATEGORY_WEIGHTS = (("overstay", 25), ("illegal_work", 25),
                            ("suspicious_activity", 25), ("address_change", 15), ("other", 10))
_REPORT_STATUS_WEIGHTS = (("received", 30), ("triaged", 25), ("investigating", 25),
                          ("closed", 20))
_REPORT_TEXTS: dict[str, tuple[str, ...]] = {
    "overstay": (
        "Warga asing di {addr} diduga masih tinggal padahal izin tinggalnya sudah habis "
        "sejak beberapa bulan lalu.",
        "Tetangga kami, seorang WNA, sudah lebih dari setahun tinggal di {addr} dan mengaku "
        "hanya memakai visa kunjungan.",
    ),
    "illegal_work": (
        "Ada WNA yang bekerja sebagai {job} di sekitar {addr} tanpa izin kerja yang jelas.",
        "Beberapa orang asing terlihat bekerja setiap hari di proyek bangunan dekat {addr}.",
    ),
    "suspicious_activity": (
        "Rumah di {addr} sering didatangi banyak orang asing pada malam hari, warga resah.",
        "Seorang WNA terlihat memotret fasilitas umum di sekitar {addr} berulang kali.",
    ),
    "address_change": (
        "WNA yang terdaftar di {addr} sudah pindah sejak bulan lalu, rumahnya sekarang kosong.",
        "Ada penghuni baru warga negara asing di {addr} yang belum lapor ke ketua RT.",
    ),
    "other": (
        "Mohon informasi prosedur melapor tamu asing yang menginap lebih dari 24 jam di {addr}.",
        "WNA di {addr} kehilangan paspor dan meminta bantuan warga.",
    ),
}
_JOBS = ("guru les bahasa", "koki restoran", "pelatih kebugaran", "penjaga toko",
         "pekerja salon", "pemandu karaoke", "buruh bangunan")


def _neighbourhood(rt: _Rt) -> str:
    return f"RT {rt.rt_no:03d}/RW {rt.rw_no:02d}, Kelurahan {rt.kelurahan.name}"


def _report_count(foreigners: int) -> int:
    return max(20, foreigners // 10)


def _build_reports(rng: random.Random, tree: _AreaTree, people: _People, today: dt.date,
                   rows: SeedRows, reporters: _Reporters) -> None:
    receipts: set[str] = set()
    officers = _field_officer_ids()
    now = _midnight_utc(today)
    for report_id in range(1, _report_count(len(people)) + 1):
        foreigner_id: int | None = None
        if people and rng.random() < 0.6:
            foreigner_id = rng.randint(1, len(people))
            rt_index = people.rt_index[foreigner_id - 1]
        else:
            rt_index = tree.pick(rng)
        rt = tree.rts[rt_index]
        category = _weighted(rng, _REPORT_CATEGORY_WEIGHTS)
        status = _weighted(rng, _REPORT_STATUS_WEIGHTS)
        submitter, contact = reporters.draw(rng, rt)
        created_at = _seconds_before(rng, now, 180)
        updated_at = created_at
        if status != "received":
            slack = int((now - created_at).total_seconds())
            updated_at = created_at + dt.timedelta(seconds=rng.randrange(min(slack, 30 * 86400)))
        rows.reports.append({
            "id": report_id,
            # From the CSPRNG, not the seeded stream: the public default seed must not
            # reproduce the demo's codes.
            "receipt_code": _unique(new_receipt_code, receipts),
            "category": category,
            "text": rng.choice(_REPORT_TEXTS[category]).format(
                addr=_neighbourhood(rt), job=rng.choice(_JOBS)),
            "reporter_contact": contact,
            **submitter,
            "status": status,
            "foreigner_id": foreigner_id,
            "assigned_officer_id": None if status == "received" else rng.choice(officers),
            "created_at": created_at,
            "updated_at": updated_at,
            **located_codes(rt.code),
        })


def _phone(rng: random.Random) -> str:
    return f"+62 812-{rng.randint(0, 9999):04d}-{rng.randint(0, 9999):04d}"


_ANONYMOUS: dict[str, str | None] = {
    "submitter_issuer": None, "submitter_role": None, "submitted_by": None}


@dataclass(frozen=True)
class _Reporters:
    submitters: tuple[Submitter, ...]
    issuer: str

    def draw(self, rng: random.Random, rt: _Rt) -> tuple[dict[str, str | None], str | None]:
        """(submitter columns, reporter_contact): a policy-named submitter (the first
        with a phone number) or the public (often anonymous)."""
        roll, threshold = rng.random(), 0.0
        for n, submitter in enumerate(self.submitters):
            threshold += submitter.share / 100
            if roll < threshold:
                area = located_codes(rt.code)[f"{submitter.level}_code"]
                columns = {"submitter_issuer": self.issuer, "submitter_role": submitter.role,
                           "submitted_by": dev_subject(submitter.role, area, None)}
                return columns, _phone(rng) if n == 0 else None
        contact_roll = rng.random()
        if contact_roll < 0.40:
            return _ANONYMOUS, None
        if contact_roll < 0.75:
            return _ANONYMOUS, _phone(rng)
        user = f"{rng.choice(_ID_MALE + _ID_FEMALE).lower()}{rng.randint(1, 999)}"
        return _ANONYMOUS, f"{user}@{rng.choice(('gmail.com', 'yahoo.co.id', 'outlook.com'))}"


# --------------------------------------------------------------------------- activities

_ACTIVITY_KIND_WEIGHTS = (("document_check", 45), ("home_visit", 30),
                          ("report_follow_up", 15), ("joint_operation", 10))
# Other kinds are sometimes done jointly with police/military (Timpora), ~15% overall.
_JOINT_SHARE_OF_OTHER_KINDS = 0.06
_OFFICER_ONE_ACTIVITIES = 6
_SETIABUDI_JOINT_OPERATIONS = 5
_ACTIVITY_WINDOW_DAYS = 60
_NOTES: dict[str, tuple[str, ...]] = {
    "document_check": (
        "Pemeriksaan paspor dan izin tinggal di lokasi; dokumen sesuai.",
        "Pemegang hanya membawa fotokopi paspor; data diverifikasi melalui sistem, sesuai.",
        "Kartu izin tinggal tidak dapat ditunjukkan; yang bersangkutan diminta datang ke "
        "kantor imigrasi.",
    ),
    "home_visit": (
        "Kunjungan ke alamat domisili; orang asing berada di tempat, alamat sesuai.",
        "Kunjungan ke alamat domisili; penghuni tidak di tempat, keterangan dari ketua RT.",
        "Verifikasi alamat; orang asing sudah pindah, data domisili perlu diperbarui.",
    ),
    "report_follow_up": (
        "Tindak lanjut laporan masyarakat {receipt}; keterangan saksi dikumpulkan.",
        "Tindak lanjut laporan {receipt}; tidak ditemukan pelanggaran keimigrasian.",
        "Tindak lanjut laporan {receipt}; ditemukan indikasi pelanggaran, dibuat BAP.",
    ),
    "joint_operation": (
        "Operasi gabungan Timpora bersama Polsek dan Koramil {kecamatan}; "
        "{n} orang asing diperiksa.",
        "Pengawasan gabungan tempat hiburan di Kecamatan {kecamatan}; {n} orang asing didata.",
    ),
}


def _activity_count(foreigners: int) -> int:
    return max(50, foreigners // 5)


@dataclass
class _ActivityPlan:
    officer_id: int
    kind: str
    forced_kecamatan: str | None = None


def _activity_plans(rng: random.Random, count: int) -> Iterable[_ActivityPlan]:
    field_officers = _field_officer_ids()
    # Officer 1 is the demo field officer: guarantee a visible history of their own.
    weights = [2.0 if officer_id == 1 else 1.0 for officer_id in field_officers]
    for n in range(count):
        officer_id = rng.choices(field_officers, weights=weights, k=1)[0]
        if n < _OFFICER_ONE_ACTIVITIES:
            yield _ActivityPlan(1, _weighted(rng, _ACTIVITY_KIND_WEIGHTS))
        elif n < _OFFICER_ONE_ACTIVITIES + _SETIABUDI_JOINT_OPERATIONS:
            # Joint operations in Setiabudi: the demo police jurisdiction sees some.
            yield _ActivityPlan(officer_id, "joint_operation", forced_kecamatan=SETIABUDI)
        else:
            yield _ActivityPlan(officer_id, _weighted(rng, _ACTIVITY_KIND_WEIGHTS))


def _build_activities(rng: random.Random, tree: _AreaTree, people: _People, today: dt.date,
                      rows: SeedRows) -> None:
    now = _midnight_utc(today)
    followable = [r for r in rows.reports if r["status"] != "received"] or rows.reports
    setiabudi_rts = tree.indexes_in(SETIABUDI)
    for activity_id, plan in enumerate(
        _activity_plans(rng, _activity_count(len(people))), start=1
    ):
        kind = plan.kind
        subject: int | None = None
        report: dict[str, Any] | None = None
        point: tuple[float, float] | None = None
        if kind == "report_follow_up":
            report = rng.choice(followable)
            rt = tree.rts[tree.by_code[report["rt_code"]]]
            subject = report["foreigner_id"]
        elif kind in ("document_check", "home_visit") and people:
            subject = rng.randint(1, len(people))
            rt = tree.rts[people.rt_index[subject - 1]]
            if kind == "home_visit":
                point = people.point[subject - 1]
        else:
            rt_index = (rng.choice(setiabudi_rts) if plan.forced_kecamatan else tree.pick(rng))
            rt = tree.rts[rt_index]
            residents = people.by_rt.get(rt_index)
            if residents and rng.random() < 0.6:
                subject = rng.choice(residents)
        joint = kind == "joint_operation" or rng.random() < _JOINT_SHARE_OF_OTHER_KINDS
        lat, lon = point or _point_near(rng, rt)
        rows.activities.append({
            "id": activity_id,
            "officer_id": plan.officer_id,
            "kind": kind,
            "occurred_at": _seconds_before(rng, now, _ACTIVITY_WINDOW_DAYS),
            "latitude": lat,
            "longitude": lon,
            "subject_foreigner_id": subject,
            "report_id": report["id"] if report else None,
            "notes": rng.choice(_NOTES[kind]).format(
                receipt=report["receipt_code"] if report else "",
                kecamatan=rt.kecamatan.name, n=rng.randint(3, 25)),
            "joint_operation": joint,
            **located_codes(rt.code),
        })

