"""Shared fixtures: a real database (SQLite and PostgreSQL), migrated and seeded, behind a
real uvicorn server on a free port, and the personas of the specification."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app
from gateway.auth import mint_dev_token
from gateway.settings import Settings
from policies import CompiledPolicy, Policy
from resolvers import migrate
from resolvers.models import Foreigner, OfficerActivity, Report, Residence
from resolvers.seed import seed_database
from schema.root import build_schema, schema_fields

TEST_SECRET = "sisada-test-secret-" + "k" * 40
# The purpose test requests state (Sisada-Purpose): immigration reads recorded fields only
# under one (policies/trail.polar); other roles' requests are unaffected by it.
PURPOSE = "field_check"


def purpose_headers(purpose: str | None = PURPOSE) -> dict[str, str]:
    return {} if purpose is None else {"sisada-purpose": purpose}


# The gateway's service credential at the stand-in registry.
REGISTRY_TOKEN = "sisada-test-registry-" + "r" * 32
SEED_FOREIGNERS = 600
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SETIABUDI = "31.74.02"
TEBET = "31.74.01"
CITY = "31.74"

# The roles SPEC.md names (the `role` claim), in the table's order.
ROLES = ("immigration_officer", "immigration_supervisor", "police", "military", "district",
         "neighbourhood", "public", "auditor")
# name -> (role, jurisdiction, officer id). The RT head's area is filled in from the data.
PERSONAS: dict[str, tuple[str, str | None, int | None]] = {
    "immigration_officer": ("immigration_officer", CITY, 1),
    "immigration_supervisor": ("immigration_supervisor", CITY, 2),
    "other_office_officer": ("immigration_officer", "31.71", 1),
    "setiabudi_police": ("police", SETIABUDI, None),
    "tebet_police": ("police", TEBET, None),
    "city_police": ("police", CITY, None),
    "setiabudi_military": ("military", SETIABUDI, None),
    "tebet_district": ("district", TEBET, None),
    "setiabudi_district": ("district", SETIABUDI, None),
    "rt_head": ("neighbourhood", None, None),
    "public": ("public", None, None),
    "auditor": ("auditor", None, None),
}


def run_async(coro: Any) -> Any:
    """Run a coroutine to completion on a private loop in a thread (safe inside any test)."""
    return run_in_thread(asyncio.run, coro)


def delete_marked_rows(database_url: str, prefix: str) -> None:
    """Remove the reports and activities a test module wrote (their text starts with
    `prefix`), so the seeded data is left as other modules expect it."""
    from sqlalchemy import delete

    async def delete_rows() -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(delete(OfficerActivity).where(
                    OfficerActivity.notes.startswith(prefix)))
                await conn.execute(delete(Report).where(Report.text.startswith(prefix)))
        finally:
            await engine.dispose()

    run_async(delete_rows())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SeedFacts:
    """What the seeded database holds, read back from it: the secrets tests hunt for."""

    foreigners: list[dict[str, Any]]
    permit_numbers: dict[int, list[str]]
    reports: list[dict[str, Any]]
    activities: list[dict[str, Any]]
    busiest_setiabudi_rt: str
    current_by_foreigner: dict[int, dict[str, Any]] = field(default_factory=dict)

    def in_area(self, area: str) -> set[int]:
        return {fid for fid, r in self.current_by_foreigner.items()
                if _inside(r, area)}


def _inside(row: dict[str, Any], area: str) -> bool:
    codes = [row["city_code"], row["kecamatan_code"], row["kelurahan_code"], row["rw_code"],
             row["rt_code"]]
    return area in codes


async def _read_facts(url: str, registry_url: str) -> SeedFacts:
    """The office's rows, each foreigner joined with its identity from the registry."""
    from examples.registry.models import PermitDocument, Person

    registry = create_async_engine(registry_url)
    try:
        async with registry.connect() as conn:
            people = {r["id"]: dict(r) for r in (await conn.execute(select(Person))).mappings()}
            permits: dict[int, list[str]] = {}
            for row in (await conn.execute(select(PermitDocument))).mappings():
                permits.setdefault(row["person_id"], []).append(row["number"])
    finally:
        await registry.dispose()
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            foreigners = [{**dict(r), **people.get(r["id"], {})}
                          for r in (await conn.execute(select(Foreigner))).mappings()]
            current = {
                r["foreigner_id"]: dict(r)
                for r in (await conn.execute(
                    select(Residence).where(Residence.valid_to.is_(None)))).mappings()
            }
            reports = [dict(r) for r in (await conn.execute(select(Report))).mappings()]
            activities = [dict(r) for r in
                          (await conn.execute(select(OfficerActivity))).mappings()]
            busiest = await conn.scalar(
                select(Residence.rt_code)
                .where(Residence.valid_to.is_(None), Residence.kecamatan_code == SETIABUDI)
                .group_by(Residence.rt_code).order_by(func.count().desc(), Residence.rt_code)
                .limit(1))
    finally:
        await engine.dispose()
    return SeedFacts(foreigners=foreigners, permit_numbers=permits, reports=reports,
                     activities=activities, busiest_setiabudi_rt=busiest,
                     current_by_foreigner=current)


class ServerThread:
    """uvicorn serving the real app on a free port, in a background thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@dataclass
class Deployment:
    """One running gateway over one seeded database, with the stand-in registry (a real
    process) holding the seeded identity."""

    backend: str
    database_url: str
    base_url: str
    settings: Settings
    app: Any
    facts: SeedFacts
    client: httpx.Client
    registry: Any = None
    # The stand-in registry's own database (identity lives there only).
    registry_database_url: str = ""

    def token(self, persona: str) -> str | None:
        role, area, officer = PERSONAS[persona]
        if role == "public":
            return None
        if persona == "rt_head":
            area = self.facts.busiest_setiabudi_rt
        return mint_dev_token(self.settings, role, area=area, officer_id=officer)

    def settings_with(self, tmp: Path, **overrides: Any) -> Settings:
        """Settings for another gateway over this deployment's data and registry."""
        values: dict[str, Any] = {"registry_url": self.settings.registry_url,
                                  "registry_token": self.settings.registry_token}
        return make_settings(self.database_url, tmp, **{**values, **overrides})

    def token_for(self, role: str, area: str | None = None, officer: int | None = None) -> str:
        return mint_dev_token(self.settings, role, area=area, officer_id=officer)

    def post(self, query: str, persona: str = "public", variables: dict[str, Any] | None = None,
             token: str | None = None, purpose: str | None = PURPOSE) -> httpx.Response:
        """POST as `persona`, stating `purpose` (None: no Sisada-Purpose header)."""
        headers = purpose_headers(purpose)
        bearer = token or self.token(persona)
        if bearer:
            headers["authorization"] = f"Bearer {bearer}"
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return self.client.post(f"{self.base_url}/graphql", json=body, headers=headers)

    def gql(self, query: str, persona: str = "public", **variables: Any) -> dict[str, Any]:
        """The JSON answer, as `persona` with the default purpose (post() to choose one)."""
        response = self.post(query, persona, variables or None)
        assert response.status_code == 200, response.text
        return response.json()


def _create_pg_database() -> str:
    import asyncpg

    name = f"sisada_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    try:
        run_async(create())
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI and is not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    return name


def _drop_pg_database(name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_async(drop())


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    name = _create_pg_database()
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    _drop_pg_database(name)


@pytest.fixture(scope="session")
def postgres_registry_database() -> Iterator[str]:
    """The stand-in registry's own database, beside the office's (another service's)."""
    name = _create_pg_database()
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    _drop_pg_database(name)


def make_settings(database_url: str, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": TEST_SECRET,
        "jwt_public_key": None,
        "jwks_url": None,
        "dev_key_file": tmp / "dev-key",
        "policy_dir": None,
        "graphiql": True,
        "log_level": "WARNING",
        # Every suite shares 127.0.0.1 and submits many reports; the rate-limit suites
        # (tests/gateway/test_rate_limits.py) turn the limits on with their own numbers.
        "rate_limits_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'sisada.db'}"
        registry_url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
        registry_url = request.getfixturevalue("postgres_registry_database")
    run_in_thread(migrate.upgrade, url)
    run_async(seed_both(url, registry_url))
    with serve_deployment(request.param, url, registry_url, tmp) as deployment:
        yield deployment


@contextlib.contextmanager
def serve_deployment(backend: str, url: str, registry_url: str, tmp: Path,
                     **overrides: Any) -> Iterator[Deployment]:
    """The stand-in registry (a real process) over `registry_url`, and the gateway over
    `url` in a uvicorn thread, pointed at it with the service credential."""
    from registry_process import RegistryProcess

    facts = run_async(_read_facts(url, registry_url))
    with RegistryProcess(registry_url, REGISTRY_TOKEN,
                         tmp / f"registry-requests-{uuid.uuid4().hex[:6]}.jsonl") as registry:
        settings = make_settings(url, tmp, registry_url=registry.url,
                                 registry_token=REGISTRY_TOKEN, **overrides)
        app = create_app(settings)
        with ServerThread(app) as base_url, httpx.Client(timeout=60) as client:
            yield Deployment(backend=backend, database_url=url, base_url=base_url,
                             settings=settings, app=app, facts=facts, client=client,
                             registry=registry, registry_database_url=registry_url)


async def seed_both(url: str, registry_url: str, foreigners: int = SEED_FOREIGNERS) -> None:
    """The office database and the registry's, consistently (as `sisada seed` does)."""
    from examples.registry import store

    await store.migrate_registry(registry_url)
    engine = create_async_engine(url)
    try:
        await seed_database(engine, foreigners=foreigners,
                            write_identity=partial(store.write_identities, registry_url))
    finally:
        await engine.dispose()


def run_in_thread(fn: Any, *args: Any) -> Any:
    """Alembic runs its own event loop: keep it off any loop of the test's."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def count_reports_with_text(database_url: str, text: str) -> int:
    """How many reports carry this text: proves a refused write wrote nothing."""
    async def count() -> int:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                return int(await conn.scalar(
                    select(func.count()).select_from(Report).where(Report.text == text)))
        finally:
            await engine.dispose()

    return int(run_async(count()))


# -- the policy, compiled against the live schema (tests/policies) ------------------------


@pytest.fixture(scope="session")
def policy() -> Policy:
    return Policy()


@pytest.fixture(scope="session")
def fields() -> dict[str, list[str]]:
    return schema_fields(build_schema())


@pytest.fixture(scope="session")
def compiled(policy: Policy, fields: dict[str, list[str]]) -> CompiledPolicy:
    return policy.compile(fields)


@contextlib.contextmanager
def migrated_database(backend: str, tmp: Path) -> Iterator[str]:
    """A fresh database at the migration head (SQLite in `tmp`, or a throwaway PostgreSQL
    database, dropped afterwards)."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'trail.db'}"
        run_in_thread(migrate.upgrade, url)
        yield url
        return
    name = _create_pg_database()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        run_in_thread(migrate.upgrade, url)
        yield url
    finally:
        _drop_pg_database(name)


def on_db(url: str, action: Any) -> Any:
    """Run `action(db)` over a Database of its own (and its own event loop)."""
    from resolvers.db import Database, create_engine

    async def run() -> Any:
        db = Database(create_engine(url))
        try:
            return await action(db)
        finally:
            await db.engine.dispose()

    return run_async(run())


# -- the browser tests: Debian's chromium driven by Playwright's Python package (never a
# browser build Playwright would download: scripts/test installs chromium with apt) --

CHROMIUM = "/usr/bin/chromium"


def _browser_missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (scripts/test installs it; CI never skips the browser test)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _browser_missing("the playwright package is not installed (the `test` extras)")
    if not Path(CHROMIUM).exists():
        _browser_missing(f"no chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


# -- Redis: a key prefix of the test's own in the local Redis (replicas and workers share
# counts and documents through it); its keys are deleted afterwards --

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(LOCAL_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI and is not reachable: {exc}")
        pytest.skip(f"Redis not reachable: {exc}")
    prefix = f"sisada-test-{uuid.uuid4().hex}"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def editable_gateway(deployment: Deployment, tmp_path: Path) -> Iterator[tuple[str, Any, Path]]:
    """A gateway over the deployment's data with a copy of the shipped policies of its own:
    (base URL, app, the copy's directory) — edit a .polar file, then reload."""
    import shutil

    from gateway.app import create_app
    from policies.loader import POLICY_DIR

    policy_dir = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policy_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    app = create_app(deployment.settings_with(tmp_path, policy_dir=policy_dir))
    with ServerThread(app) as base_url:
        yield base_url, app, policy_dir
