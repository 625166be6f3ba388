"""When the database goes away the gateway says so, leaks nothing, and comes back by itself.

A PostgreSQL cluster of the test's own (initdb on a spare port, never the shared server)
is stopped under a running gateway: `/readyz` turns 503, queries and mutations answer
`UNAVAILABLE` with a fixed message and an error id the server log carries — no driver
name, host, port or SQL. The cluster is started again on the same port and the same
gateway process serves again within seconds, without a restart.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ServerThread, free_port, make_settings, run_async, run_in_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app
from gateway.auth import mint_dev_token
from gateway.settings import Settings
from resolvers import migrate
from resolvers.models import Area
from resolvers.seed import seed_database

# Office fields only: this module is about the office database (no registry runs here;
# tests/gateway/test_registry_faults_http.py fails the registry).
FOREIGNERS = "{ foreigners(first: 5) { totalCount nodes { id nationality permitType } } }"
SUBMIT = """
mutation Submit($input: SubmitReportInput!) {
  submitReport(input: $input) { receiptCode status }
}
"""
UNAVAILABLE_MESSAGE = "service temporarily unavailable"
RECOVERY_SECONDS = 10


def _postgres_bin_dir() -> Path | None:
    def version(path: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path))

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary directory, on 127.0.0.1 and a free port.

    initdb and postgres refuse to run as root, so as root they run as the `postgres` user.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="sisada-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    def _must(self, tool: str, *args: str) -> None:
        done = self._run(tool, *args)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}")

    def init(self) -> None:
        self._must("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                   "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        # -F: no fsync, the data is thrown away anyway.
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -F"
        self._must("pg_ctl", "-D", str(self.data), "-l", str(self.root / "postgres.log"),
                   "-o", options, "-w", "-t", "30", "start")
        deadline = time.monotonic() + 30
        while self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port)).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not become ready")
            time.sleep(0.1)

    def stop(self) -> None:
        self._must("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status").returncode == 0

    def create_database(self, name: str) -> None:
        self._must("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if self.data.exists() and self.running():
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("initdb is required in CI to test database outages")
        pytest.skip("initdb not found: cannot start a throwaway PostgreSQL cluster")
    postgres = ThrowawayPostgres(bin_dir)
    try:
        postgres.init()
        postgres.start()
        yield postgres
    finally:
        postgres.remove()


@dataclass
class Gateway:
    """One running gateway process over one seeded database."""

    base_url: str
    settings: Settings
    client: httpx.Client
    rt_code: str

    def ready(self) -> httpx.Response:
        return self.client.get(f"{self.base_url}/readyz")

    def foreigners_as_immigration_officer(self) -> httpx.Response:
        token = mint_dev_token(self.settings, "immigration_officer", area="31.74", officer_id=1)
        return self.client.post(f"{self.base_url}/graphql", json={"query": FOREIGNERS},
                                headers={"authorization": f"Bearer {token}"})

    def submit_report_as_public(self) -> httpx.Response:
        report = {"category": "SUSPICIOUS_ACTIVITY", "text": "sisada-fault-test report",
                  "areaCode": self.rt_code}
        return self.client.post(f"{self.base_url}/graphql",
                                json={"query": SUBMIT, "variables": {"input": report}})


@contextlib.contextmanager
def running_gateway(database_url: str, tmp: Path, rt_code: str) -> Iterator[Gateway]:
    settings = make_settings(database_url, tmp)
    with ServerThread(create_app(settings)) as base_url, httpx.Client(timeout=30) as client:
        yield Gateway(base_url=base_url, settings=settings, client=client, rt_code=rt_code)


def _migrate_and_seed(url: str) -> str:
    """Migrate and seed a small data set; the code of one RT to report from."""
    run_in_thread(migrate.upgrade, url)

    async def seed() -> str:
        engine = create_async_engine(url)
        try:
            await seed_database(engine, foreigners=50)
            async with engine.connect() as conn:
                return str(await conn.scalar(
                    select(Area.code).where(Area.level == "rt").order_by(Area.code).limit(1)))
        finally:
            await engine.dispose()

    return str(run_async(seed()))


@pytest.fixture(scope="module")
def gateway(cluster: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Gateway]:
    cluster.create_database("sisada")
    url = cluster.url("sisada")
    rt_code = _migrate_and_seed(url)
    with running_gateway(url, tmp_path_factory.mktemp("faults"), rt_code) as running:
        yield running


@contextlib.contextmanager
def outage(cluster: ThrowawayPostgres) -> Iterator[None]:
    """The database is down inside the block and up again after it, whatever happens."""
    cluster.stop()
    try:
        yield
    finally:
        if not cluster.running():
            cluster.start()


def _assert_unavailable(response: httpx.Response, *secrets: str) -> dict[str, Any]:
    """Exactly one UNAVAILABLE error with the fixed message, no data, nothing internal."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert error["message"] == UNAVAILABLE_MESSAGE
    assert error["extensions"]["code"] == "UNAVAILABLE"
    assert re.fullmatch(r"[0-9a-f]{16}", error["extensions"]["errorId"])
    assert not any((body.get("data") or {}).values()), body
    _assert_nothing_internal(response.content, *secrets)
    return error


def _assert_nothing_internal(raw: bytes, *secrets: str) -> None:
    text = raw.decode().lower()
    for leak in ("asyncpg", "sqlalchemy", "sqlite", "select", "127.0.0.1", "traceback",
                 "connect call failed", *secrets):
        assert leak.lower() not in text, f"{leak!r} leaked: {raw!r}"


def _wait_until_ready(gateway: Gateway) -> float:
    started = time.monotonic()
    while gateway.ready().status_code != 200:
        if time.monotonic() - started > RECOVERY_SECONDS:
            pytest.fail(f"gateway not ready {RECOVERY_SECONDS}s after the database returned")
        time.sleep(0.1)
    return time.monotonic() - started


def test_the_throwaway_cluster_is_not_the_shared_server(cluster: ThrowawayPostgres) -> None:
    assert cluster.port != 5432
    assert cluster.running()


def test_queries_succeed_and_ready_while_database_is_up(gateway: Gateway) -> None:
    assert gateway.ready().status_code == 200
    body = gateway.foreigners_as_immigration_officer().json()
    assert "errors" not in body, body
    assert body["data"]["foreigners"]["totalCount"] > 0


def test_not_ready_while_database_is_down(cluster: ThrowawayPostgres, gateway: Gateway) -> None:
    with outage(cluster):
        response = gateway.ready()
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "database": "down",
                                   "registry": "not configured"}
        _assert_nothing_internal(response.content, str(cluster.port))


def test_query_is_unavailable_while_database_is_down_as_immigration_officer(
    cluster: ThrowawayPostgres, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    # Warm the pool first: connections that die in the outage must not leak either.
    assert "errors" not in gateway.foreigners_as_immigration_officer().json()
    with outage(cluster), caplog.at_level(logging.WARNING, logger="sisada.graphql"):
        error = _assert_unavailable(gateway.foreigners_as_immigration_officer(),
                                    str(cluster.port))
    # The server log carries the same id, with the driver's reason.
    logged = [r.getMessage() for r in caplog.records if error["extensions"]["errorId"]
              in r.getMessage()]
    assert len(logged) == 1 and "database_unavailable" in logged[0]


def test_mutation_is_unavailable_while_database_is_down_as_public(
    cluster: ThrowawayPostgres, gateway: Gateway
) -> None:
    with outage(cluster):
        _assert_unavailable(gateway.submit_report_as_public(), str(cluster.port))


def test_gateway_recovers_without_restart_when_database_returns(
    cluster: ThrowawayPostgres, gateway: Gateway
) -> None:
    with outage(cluster):
        _assert_unavailable(gateway.foreigners_as_immigration_officer(), str(cluster.port))
        assert gateway.ready().status_code == 503
    # Same port, same gateway process.
    assert _wait_until_ready(gateway) < RECOVERY_SECONDS
    body = gateway.foreigners_as_immigration_officer().json()
    assert "errors" not in body, body
    assert body["data"]["foreigners"]["totalCount"] > 0
    receipt = gateway.submit_report_as_public().json()
    assert "errors" not in receipt, receipt
    assert receipt["data"]["submitReport"]["status"] == "RECEIVED"


def test_sqlite_in_a_missing_directory_is_unavailable_until_it_exists(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "not-yet"
    url = f"sqlite+aiosqlite:///{folder / 'sisada.db'}"
    with running_gateway(url, tmp_path, rt_code="31.74.01.1001.01.001") as sqlite_gateway:
        assert sqlite_gateway.ready().status_code == 503
        # An officer's token names an officer the gateway cannot look up yet: refused at the
        # door as unavailable (never let through unchecked).
        refused = sqlite_gateway.foreigners_as_immigration_officer()
        assert refused.status_code == 503, refused.text
        assert [e["extensions"]["code"] for e in refused.json()["errors"]] == ["UNAVAILABLE"]
        _assert_nothing_internal(refused.content, str(tmp_path))
        _assert_unavailable(sqlite_gateway.submit_report_as_public(), str(tmp_path))

        folder.mkdir()
        _migrate_and_seed(url)
        assert _wait_until_ready(sqlite_gateway) < RECOVERY_SECONDS
        body = sqlite_gateway.foreigners_as_immigration_officer().json()
        assert "errors" not in body, body
        assert body["data"]["foreigners"]["totalCount"] > 0
