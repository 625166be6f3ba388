"""The authorization benchmark: one command, four variants, interleaved, over real HTTP.

    python -m bench.run [--backend sqlite|postgresql|both] [--foreigners 10000]

Seeds (or reuses) the databases, starts every variant as its own uvicorn process, and
measures the same queries against each in interleaved rounds so machine noise hits all
alike. Prints one markdown table per backend: median and p95 per variant, the ratios
the issue sets bars for, SQL statements per query, requests per second under concurrent
load, and each server's peak memory. Absolute times are not comparable across runs;
ratios measured in one run are.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.serve import bench_settings
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


@dataclass
class Timings:
    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, case: str, variant: str, seconds: float) -> None:
        self.samples.setdefault((case, variant), []).append(seconds)

    def median(self, case: str, variant: str) -> float:
        return statistics.median(self.samples[(case, variant)])

    def p95(self, case: str, variant: str) -> float:
        values = sorted(self.samples[(case, variant)])
        return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- databases -------------------------------------------------------------------


async def _seed(url: str, foreigners: int) -> None:
    engine = create_engine(url)
    try:
        await seed_database(engine, foreigners=foreigners)
    finally:
        await engine.dispose()


def sqlite_database(foreigners: int) -> str:
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"sisada-{foreigners}.db"
    url = f"sqlite+aiosqlite:///{path}"
    if not path.exists():
        print(f"seeding SQLite with {foreigners} foreigners …", file=sys.stderr)
        migrate.upgrade(url)
        asyncio.run(_seed(url, foreigners))
    return url


@contextlib.contextmanager
def postgres_database(foreigners: int) -> Iterator[str]:
    import asyncpg

    name = f"sisada_bench_{foreigners}_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        print(f"seeding PostgreSQL with {foreigners} foreigners …", file=sys.stderr)
        migrate.upgrade(url)
        asyncio.run(_seed(url, foreigners))
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- servers ---------------------------------------------------------------------


def start(variant: str, database_url: str) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.serve", variant, database_url, str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    server = Server(variant, port, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{variant} server died: {process.stderr.read().decode()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        time.sleep(0.1)
    raise RuntimeError(f"{variant} server did not start")


def stop(servers: list[Server]) -> None:
    for server in servers:
        server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()


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
                               headers={"authorization": f"Bearer {token}"})
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
    headers = {"authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients)

    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                response = await client.post(f"{server.url}/graphql", json=payload,
                                             headers=headers)
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
    body = client.post(f"{server.url}/graphql", headers={
        "authorization": f"Bearer {toks['immigration']}"},
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
             + " | sisada/no-policy | naive/sisada | sisada/floor | SQL statements |",
             "|---|" + "---|" * (len(variants) + 4)]
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
        lines.append(f"| {case.name} | " + " | ".join(cells)
                     + f" | {ratio_np:.3f} | {ratio_naive:.0f} | {floor} | {stmts} |")
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


def run_backend(backend: str, url: str, deep_urls: tuple[str, str] | None, args: argparse.Namespace
                ) -> str:
    rt = busiest_rt(url)
    toks = tokens(url, rt)
    servers = {variant: start(variant, url) for variant in ("sisada", "no-policy", "naive",
                                                            "floor")}
    extra: list[Server] = []
    try:
        with httpx.Client(timeout=600) as client:
            found = discover(client, servers["sisada"], toks, args.foreigners)
            cases = cases_for(found, rt)
            counts: dict[str, dict[str, int]] = {"sisada": {}}
            for case in cases:
                counts["sisada"][case.name] = statements(client, servers["sisada"], case,
                                                         toks[case.persona])
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
        if deep_urls:
            small_db, big_db = (start("sisada", u) for u in deep_urls)
            extra = [small_db, big_db]
            deep = deep_page_ratio(small_db, big_db, deep_urls, args.rounds * 2)
    finally:
        stop(list(servers.values()) + extra)
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
        url = sqlite_database(args.foreigners)
        deep = None if args.skip_deep else (sqlite_database(10_000), sqlite_database(100_000))
        print(run_backend("SQLite", url, deep, args), "\n", flush=True)
    if args.backend in ("postgresql", "both"):
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(postgres_database(args.foreigners))
            deep = None
            if not args.skip_deep:
                small = url if args.foreigners == 10_000 else stack.enter_context(
                    postgres_database(10_000))
                big = url if args.foreigners == 100_000 else stack.enter_context(
                    postgres_database(100_000))
                deep = (small, big)
            print(run_backend("PostgreSQL", url, deep, args), "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
