"""The authorization benchmark: one command, four variants, interleaved, over real HTTP.

    python -m bench.run [--backend sqlite|postgresql|both] [--foreigners 10000]

Seeds (or reuses) the databases — the office's and the stand-in central registry's, which
holds identity — starts the registry as its own process (one per backend, shared by every
variant, as in production), every variant as its own uvicorn process pointed at it, and
measures the same queries against each in interleaved rounds so machine noise hits all
alike. Prints one markdown table per backend: median and p95 per variant, the ratios
the issue sets bars for, SQL statements per query, requests per second under concurrent
load, and each server's peak memory. Absolute times are not comparable across runs;
ratios measured in one run are.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

import httpx

from bench.serve import BENCH_REGISTRY_TOKEN, bench_settings
from examples.registry import store
from gateway.auth import mint_dev_token
from gateway.cursors import cursor_key
from resolvers import migrate
from resolvers.db import create_engine
from resolvers.paging import CursorSeal, encode_cursor
from resolvers.seed import seed_database

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SETIABUDI = "31.74.02"
# Identity reads are recorded in the access trail under a stated purpose (policies/
# trail.polar): immigration states one, as its frontends do; other roles read no identity.
PURPOSE = "permit_supervision"


def headers(token: str, persona: str) -> dict[str, str]:
    """A persona's request headers: its bearer token, and a purpose where it reads identity."""
    found = {"authorization": f"Bearer {token}"} if token else {}
    if persona.startswith("immigration"):
        found["sisada-purpose"] = PURPOSE
    return found

LIST = """query($first: Int!) { foreigners(first: $first) { nodes {
  id fullName passportNumber nationality sex ageBand permitType permitStatus permitExpiresOn
  sponsorType permits { permitType expiresOn }
  residence { streetAddress areaCode area { name } } } } }"""
PAGE = """query($after: String) { foreigners(first: 50, after: $after) { nodes {
  id fullName nationality permitType permitExpiresOn residence { areaCode } } } }"""
CHECK = """query($n: String!) { checkForeigner(documentNumber: $n) { registered
  foreigner { id fullName nationality permitType permitStatus permitExpiresOn
  residence { streetAddress areaCode } } } }"""
COUNTS = """query($c: String!) { area(code: $c) { code name foreignerCount
  byNationality { key count } byPermitType { key count } } }"""


@dataclass
class Case:
    name: str
    query: str
    persona: str
    variables: dict[str, Any]
    floor: str | None = None  # the floor variant's URL path for the same rows
    naive_rounds: int | None = None  # naive is slow: fewer rounds where it costs seconds


@dataclass
class Server:
    variant: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_memory_mib(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")


def percentile(values: list[float], q: float, empty: float = float("nan")) -> float:
    """The q-quantile (0 to 1) of `values` by nearest rank; `empty` when there are none."""
    if not values:
        return empty
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Timings:
    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, case: str, variant: str, seconds: float) -> None:
        self.samples.setdefault((case, variant), []).append(seconds)

    def median(self, case: str, variant: str) -> float:
        return statistics.median(self.samples[(case, variant)])

    def p95(self, case: str, variant: str) -> float:
        return percentile(self.samples[(case, variant)], 0.95)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- databases -------------------------------------------------------------------


@dataclass(frozen=True)
class Databases:
    """The office database and the registry's, seeded together (identity in the registry
    only, keyed by the office's foreigner and permit ids)."""

    office: str
    registry: str


async def _seed(databases: Databases, foreigners: int) -> None:
    await store.migrate_registry(databases.registry)
    engine = create_engine(databases.office)
    try:
        await seed_database(engine, foreigners=foreigners,
                            write_identity=partial(store.write_identities, databases.registry))
    finally:
        await engine.dispose()


def migration_head() -> str:
    """The office schema's Alembic head: part of the cached SQLite files' names, so a file
    seeded under an older schema (e.g. with identity columns, before 0004) is never reused."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()


def sqlite_database(foreigners: int) -> Databases:
    DATA.mkdir(parents=True, exist_ok=True)
    head = migration_head()
    office, registry = (DATA / f"sisada-{foreigners}-{head}.db",
                        DATA / f"registry-{foreigners}-{head}.db")
    if not (office.exists() and registry.exists()):
        # Seeded under temporary names and renamed when both are complete, so an interrupted
        # seed never leaves a half-filled pair to be reused.
        seeding = [path.with_suffix(".seeding.db") for path in (office, registry)]
        for path in (office, registry, *seeding):
            for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                stale.unlink(missing_ok=True)
        print(f"seeding SQLite with {foreigners} foreigners (office + registry) …",
              file=sys.stderr)
        pending = Databases(*(f"sqlite+aiosqlite:///{path}" for path in seeding))
        migrate.upgrade(pending.office)
        asyncio.run(_seed(pending, foreigners))
        seeding[1].rename(registry)
        seeding[0].rename(office)
    # Each run works on its own copy of the office database: the gateway appends to the
    # access trail (append-only, never cleared) on every identity read, and a trail grown
    # by earlier runs must not weigh on this one. The registry's is only read.
    working = DATA / f"run-{os.getpid()}-{office.name}"
    shutil.copyfile(office, working)
    atexit.register(_remove_sqlite, working)
    return Databases(f"sqlite+aiosqlite:///{working}", f"sqlite+aiosqlite:///{registry}")


def _remove_sqlite(path: Path) -> None:
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def postgres_database(foreigners: int) -> Iterator[Databases]:
    import asyncpg

    names = (f"sisada_bench_{foreigners}_{os.getpid()}",
             f"sisada_bench_registry_{foreigners}_{os.getpid()}")

    async def admin(*statements: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(*(f'CREATE DATABASE "{name}"' for name in names)))
    databases = Databases(*(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
                            for name in names))
    try:
        print(f"seeding PostgreSQL with {foreigners} foreigners (office + registry) …",
              file=sys.stderr)
        migrate.upgrade(databases.office)
        asyncio.run(_seed(databases, foreigners))
        yield databases
    finally:
        asyncio.run(admin(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
                            for name in names)))


# -- servers ---------------------------------------------------------------------


@dataclass
class Registry:
    """The stand-in central registry (`sisada registry serve`) as its own process. With
    `record`, it appends one JSON line per /graphql request it receives there."""

    database_url: str
    port: int
    process: subprocess.Popen[bytes]
    stderr: IO[bytes]
    record: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def requests(self) -> list[dict[str, Any]]:
        if self.record is None or not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    def clear(self) -> None:
        if self.record is not None:
            self.record.write_bytes(b"")


def start_registry(database_url: str, record: Path | None = None) -> Registry:
    DATA.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "SISADA_REGISTRY_DATABASE_URL": database_url,
           "SISADA_REGISTRY_TOKEN": BENCH_REGISTRY_TOKEN, "SISADA_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "gateway.cli", "registry", "serve", "--host",
               "127.0.0.1", "--port", str(port)]
    if record is not None:
        record.write_bytes(b"")
        command += ["--record", str(record)]
    # stderr to a file, never a pipe nobody reads (a full pipe would stall the process).
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop_registry)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=stderr)
    registry = Registry(database_url, port, process, stderr, record)
    _wait_healthy(process, f"http://127.0.0.1:{port}/healthz", "registry", stderr)
    return registry


def stop_registry(registry: Registry | None) -> None:
    if registry is None:
        return
    _terminate([registry.process])
    registry.stderr.close()


def _wait_healthy(process: subprocess.Popen[bytes], health: str, what: str, stderr: IO[bytes]
                  ) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr.seek(0)
            raise RuntimeError(f"{what} died: {stderr.read().decode()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(health, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{what} did not start")


def start(variant: str, database_url: str, registry: Registry | None = None,
          env_extra: dict[str, str] | None = None) -> Server:
    """A variant's server over the office database, reaching `registry` for identity."""
    port = free_port()
    env = {**os.environ, **(env_extra or {})}
    env.pop("SISADA_REGISTRY_URL", None)
    if registry is not None:
        env.update(SISADA_REGISTRY_URL=registry.url, SISADA_REGISTRY_TOKEN=BENCH_REGISTRY_TOKEN)
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server)
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.serve", variant, database_url, str(port)],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
    )
    server = Server(variant, port, process)
    _wait_healthy(process, f"{server.url}/healthz", f"{variant} server", stderr)
    return server


def _terminate(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop(servers: list[Server]) -> None:
    _terminate([server.process for server in servers])


# -- requests --------------------------------------------------------------------


def tokens(database_url: str, rt: str) -> dict[str, str]:
    settings = bench_settings(database_url)
    return {
        "police": mint_dev_token(settings, "police", area=SETIABUDI),
        "immigration": mint_dev_token(settings, "immigration_officer", area="31.74",
                                      officer_id=1),
        "district": mint_dev_token(settings, "district", area=SETIABUDI),
        "neighbourhood": mint_dev_token(settings, "neighbourhood", area=rt),
    }


def request(client: httpx.Client, server: Server, case: Case, token: str) -> tuple[float, Any]:
    if server.variant == "floor":
        url = f"{server.url}{case.floor}"
        started = time.perf_counter()
        response = client.get(url)
    else:
        started = time.perf_counter()
        response = client.post(f"{server.url}/graphql",
                               json={"query": case.query, "variables": case.variables},
                               headers=headers(token, case.persona))
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"{server.variant} {case.name}: {body['errors'][:1]}")
    return elapsed, body


def statements(client: httpx.Client, server: Server, case: Case, token: str) -> int:
    before = client.get(f"{server.url}/bench/statements").json()["n"]
    request(client, server, case, token)
    return client.get(f"{server.url}/bench/statements").json()["n"] - before


async def _load(server: Server, case: Case, token: str, clients: int, seconds: float) -> float:
    done = 0
    deadline = time.monotonic() + seconds
    payload = {"query": case.query, "variables": case.variables}
    sent = headers(token, case.persona)
    limits = httpx.Limits(max_connections=clients)

    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                response = await client.post(f"{server.url}/graphql", json=payload,
                                             headers=sent)
                response.raise_for_status()
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return done / (time.monotonic() - started)


# -- the run ---------------------------------------------------------------------


def deep_cursor(position: int) -> str:
    """A cursor at `position` in the ID order, sealed as the gateway seals its own (every
    variant shares the benchmark's secret, so one key opens it everywhere)."""
    seal = CursorSeal(cursor_key(bench_settings("sqlite+aiosqlite://")))
    return seal.seal(encode_cursor("ID", [position]))


def discover(client: httpx.Client, server: Server, toks: dict[str, str], foreigners: int
             ) -> dict[str, Any]:
    """A passport number to check and a cursor deep in the table."""
    body = client.post(f"{server.url}/graphql", headers=headers(toks["immigration"],
                                                                "immigration"),
        json={"query": "{ foreigners(first: 1) { nodes { passportNumber } } }"}).json()
    return {
        "passport": body["data"]["foreigners"]["nodes"][0]["passportNumber"],
        "deep_cursor": deep_cursor(int(foreigners * 0.9)),
    }


def busiest_rt(database_url: str) -> str:
    from sqlalchemy import func, select

    from resolvers.models import Residence

    async def query() -> str:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                return await conn.scalar(
                    select(Residence.rt_code)
                    .where(Residence.valid_to.is_(None), Residence.kecamatan_code == SETIABUDI)
                    .group_by(Residence.rt_code)
                    .order_by(func.count().desc(), Residence.rt_code).limit(1))
        finally:
            await engine.dispose()

    return asyncio.run(query())


def cases_for(found: dict[str, Any], rt: str) -> list[Case]:
    return [
        Case("list 1000 as police", LIST, "police", {"first": 1000},
             floor=f"/floor/foreigners?first=1000&area={SETIABUDI}", naive_rounds=3),
        Case("list 1000 as immigration", LIST, "immigration", {"first": 1000},
             floor="/floor/foreigners?first=1000", naive_rounds=3),
        Case("page of 50 deep in the table", PAGE, "immigration",
             {"after": found["deep_cursor"]}),
        Case("checkForeigner", CHECK, "immigration", {"n": found["passport"]}),
        Case("counts for a kecamatan", COUNTS, "police", {"c": SETIABUDI}),
        Case("counts for an RT", COUNTS, "neighbourhood", {"c": rt}),
    ]


def measure(servers: dict[str, Server], cases: list[Case], toks: dict[str, str], rounds: int
            ) -> Timings:
    timings = Timings()
    rng = random.Random(7)
    with httpx.Client(timeout=600) as client:
        for server in servers.values():  # warm-up: connections, caches, first imports
            for case in cases:
                if server.variant != "floor" or case.floor:
                    request(client, server, case, toks[case.persona])
        time.sleep(1.0)  # let the warm-up's naive requests settle (see below)
        for round_no in range(rounds):
            for case in cases:
                order = [s for s in servers.values() if _interleaved(s, case)]
                rng.shuffle(order)
                for server in order:
                    elapsed, _ = request(client, server, case, toks[case.persona])
                    timings.add(case.name, server.variant, elapsed)
            print(f"  round {round_no + 1}/{rounds}", file=sys.stderr)
        # Naive's seconds-long requests leave its process busy freeing what they built, on
        # the same two cores: measured apart, so that aftermath never lands on another
        # variant's request.
        for case in cases:
            naive = servers.get("naive")
            if naive is None or case.naive_rounds is None:
                continue
            for _ in range(case.naive_rounds):
                elapsed, _ = request(client, naive, case, toks[case.persona])
                timings.add(case.name, "naive", elapsed)
                time.sleep(1.0)
            print(f"  naive: {case.name}", file=sys.stderr)
    return timings


def _interleaved(server: Server, case: Case) -> bool:
    if server.variant == "floor":
        return bool(case.floor)
    return not (server.variant == "naive" and case.naive_rounds is not None)


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def report(backend: str, foreigners: int, cases: list[Case], timings: Timings,
           counts: dict[str, dict[str, int]], list_statements: tuple[int, int],
           rps: dict[str, float], memory: dict[str, float], deep: tuple[float, float] | None,
           ) -> str:
    variants = ["sisada", "no-policy", "naive", "floor"]
    lines = [f"### {backend}, {foreigners:,} foreigners", "",
             "| query | " + " | ".join(f"{v} median / p95 ms" for v in variants)
             + " | sisada/no-policy | naive/sisada | sisada/floor | SQL statements "
             "| registry requests |",
             "|---|" + "---|" * (len(variants) + 5)]
    for case in cases:
        cells = []
        for variant in variants:
            if (case.name, variant) in timings.samples:
                cells.append(f"{fmt_ms(timings.median(case.name, variant))} / "
                             f"{fmt_ms(timings.p95(case.name, variant))}")
            else:
                cells.append("—")
        sisada = timings.median(case.name, "sisada")
        ratio_np = sisada / timings.median(case.name, "no-policy")
        ratio_naive = timings.median(case.name, "naive") / sisada
        floor = (f"{sisada / timings.median(case.name, 'floor'):.2f}"
                 if (case.name, "floor") in timings.samples else "—")
        stmts = counts["sisada"].get(case.name, 0)
        upstream = counts["upstream"].get(case.name, 0)
        lines.append(f"| {case.name} | " + " | ".join(cells)
                     + f" | {ratio_np:.3f} | {ratio_naive:.0f} | {floor} | {stmts} "
                     f"| {upstream} |")
    lines += ["", f"SQL statements, foreigner list as police: 10 rows → {list_statements[0]}, "
              f"1,000 rows → {list_statements[1]}.", ""]
    lines.append("| variant | requests/s, 32 clients, 50-row list as police | peak RSS MiB |")
    lines.append("|---|---|---|")
    for variant in variants:
        r = f"{rps[variant]:.1f}" if variant in rps else "—"
        lines.append(f"| {variant} | {r} | {memory.get(variant, float('nan')):.0f} |")
    if deep:
        lines += ["", f"50-row page deep in the table (sisada): 10k → {fmt_ms(deep[0])} ms, "
                  f"100k → {fmt_ms(deep[1])} ms, ratio {deep[1] / deep[0]:.2f}."]
    return "\n".join(lines)


def run_backend(backend: str, databases: Databases, deep_databases: tuple[Databases, Databases]
                | None, args: argparse.Namespace) -> str:
    url = databases.office
    rt = busiest_rt(url)
    toks = tokens(url, rt)
    registry = start_registry(databases.registry, DATA / f"registry-requests-{os.getpid()}.jsonl")
    servers: dict[str, Server] = {}
    extra: list[Server] = []
    extra_registries: list[Registry] = []
    try:
        servers = {variant: start(variant, url, registry)
                   for variant in ("sisada", "no-policy", "naive", "floor")}
        with httpx.Client(timeout=600) as client:
            found = discover(client, servers["sisada"], toks, args.foreigners)
            cases = cases_for(found, rt)
            counts: dict[str, dict[str, int]] = {"sisada": {}, "upstream": {}}
            for case in cases:
                registry.clear()
                counts["sisada"][case.name] = statements(client, servers["sisada"], case,
                                                         toks[case.persona])
                counts["upstream"][case.name] = len(registry.requests())
            small = Case("list 10", LIST, "police", {"first": 10})
            big = Case("list 1000", LIST, "police", {"first": 1000})
            list_statements = (statements(client, servers["sisada"], small, toks["police"]),
                               statements(client, servers["sisada"], big, toks["police"]))
        timings = measure(servers, cases, toks, args.rounds)
        load_case = Case("list 50", LIST, "police", {"first": 50})
        rps = {}
        for variant in ("sisada", "no-policy", "naive"):
            seconds = args.load_seconds if variant != "naive" else min(args.load_seconds, 5)
            rps[variant] = asyncio.run(_load(servers[variant], load_case, toks["police"],
                                             args.clients, seconds))
        memory = {v: s.peak_memory_mib() for v, s in servers.items()}
        # The deep-page comparison runs alone: idle servers still hold memory and naive may
        # still be freeing its load test.
        stop(list(servers.values()))
        servers = {}
        deep = None
        if deep_databases:
            # The page selects names: each database gets its own registry (the main one is
            # reused where the database is the same).
            for dbs in deep_databases:
                if dbs.registry != databases.registry:
                    extra_registries.append(start_registry(dbs.registry))
            upstream = {databases.registry: registry,
                        **{r.database_url: r for r in extra_registries}}
            extra = [start("sisada", dbs.office, upstream[dbs.registry])
                     for dbs in deep_databases]
            deep = deep_page_ratio(extra[0], extra[1],
                                   (deep_databases[0].office, deep_databases[1].office),
                                   args.rounds * 2)
    finally:
        stop(list(servers.values()) + extra)
        for upstream_registry in (registry, *extra_registries):
            stop_registry(upstream_registry)
        if registry.record is not None:
            registry.record.unlink(missing_ok=True)
    return report(backend, args.foreigners, cases, timings, counts, list_statements, rps,
                  memory, deep)


def deep_page_ratio(small: Server, big: Server, urls: tuple[str, str], rounds: int
                    ) -> tuple[float, float]:
    results: dict[str, list[float]] = {"small": [], "big": []}
    with httpx.Client(timeout=60) as client:
        pairs = []
        for label, server, url, n in (("small", small, urls[0], 10_000),
                                      ("big", big, urls[1], 100_000)):
            token = tokens(url, SETIABUDI + ".1001.01.001")["immigration"]
            case = Case("deep", PAGE, "immigration",
                        {"after": deep_cursor(int(n * 0.9))})
            request(client, server, case, token)  # warm-up
            pairs.append((label, server, case, token))
        for _ in range(rounds):
            for label, server, case, token in pairs:
                elapsed, body = request(client, server, case, token)
                assert len(body["data"]["foreigners"]["nodes"]) == 50
                results[label].append(elapsed)
    return statistics.median(results["small"]), statistics.median(results["big"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--foreigners", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=41,
                        help="interleaved rounds per query (medians; naive: 3 on the big lists)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--load-seconds", type=float, default=8.0)
    parser.add_argument("--skip-deep", action="store_true",
                        help="skip the 10k-vs-100k deep page comparison")
    args = parser.parse_args(argv)
    print(f"# Sisada authorization benchmark\n\nmachine: {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}\n")
    if args.backend in ("sqlite", "both"):
        dbs = sqlite_database(args.foreigners)
        deep = None if args.skip_deep else (sqlite_database(10_000), sqlite_database(100_000))
        print(run_backend("SQLite", dbs, deep, args), "\n", flush=True)
    if args.backend in ("postgresql", "both"):
        with contextlib.ExitStack() as stack:
            dbs = stack.enter_context(postgres_database(args.foreigners))
            deep = None
            if not args.skip_deep:
                small = dbs if args.foreigners == 10_000 else stack.enter_context(
                    postgres_database(10_000))
                big = dbs if args.foreigners == 100_000 else stack.enter_context(
                    postgres_database(100_000))
                deep = (small, big)
            print(run_backend("PostgreSQL", dbs, deep, args), "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
