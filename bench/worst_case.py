"""The most expensive request the default limits allow, per role (SPEC rule 9).

    python -m bench.worst_case [--backend sqlite|postgresql|both] [--foreigners 10000]

Starts the real gateway (default limits) as its own process and, for every role, tries a
family of heavy documents: long lists with every nested relation, fan-outs up and down the
area tree, count breakdowns over every area, federation `_entities` floods, aliases and
batches. Each family grows with one number (`first`, aliases, representations); the
benchmark finds the largest the gateway accepts (by asking it: a refused document answers
QUERY_TOO_COMPLEX / TOO_MANY_ALIASES before anything runs) and runs that one, measuring

- its wall time and the server's extra resident memory (sampled every 5 ms);
- the latency of `/healthz` and of a small query sent every 50 ms meanwhile (p99).

Bars (issue 8): worst allowed request ≤ 2 s and ≤ 200 MB extra; `/healthz` p99 ≤ 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DirectiveNode,
    FieldNode,
    NameNode,
    OperationDefinitionNode,
    parse,
    print_ast,
)

from bench.run import (
    Databases,
    headers,
    percentile,
    postgres_database,
    sqlite_database,
    start,
    start_registry,
    stop,
    stop_registry,
)
from bench.serve import bench_settings
from gateway.auth import mint_dev_token

CITY = "31.74"
SETIABUDI = "31.74.02"
TIMEOUT = 120.0

FOREIGNER_FIELDS = """id fullName passportNumber birthDate photoUrl permitNumber nationality sex
  ageBand permitType permitStatus permitExpiresOn sponsorType"""
RESIDENCE = """streetAddress latitude longitude areaCode kecamatanCode kelurahanCode rwCode
  rtCode validFrom validTo area { code name level foreignerCount }"""
PERMITS = "permits { id number permitType status issuedOn expiresOn sponsorType sponsorName }"
AREA_COUNTS = ("code name level foreignerCount byNationality { key count } "
               "byPermitType { key count }")

Document = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Family:
    name: str
    make: Callable[[int], Document]
    largest: int  # the search's upper end
    batch: bool = False  # send 10 copies as one batched request


def _aliases(n: int, body: str) -> str:
    return "{ " + " ".join(f"a{i}: {body}" for i in range(n)) + " }"


FAMILIES = [
    Family("list, every field and relation", lambda n: (
        f"{{ foreigners(first: {n}) {{ totalCount nodes {{ {FOREIGNER_FIELDS} "
        f"residence {{ {RESIDENCE} }} {PERMITS} residenceHistory {{ {RESIDENCE} }} }} }} }}",
        {}), 1000),
    Family("list x aliases", lambda n: (_aliases(n, (
        f"foreigners(first: 1000) {{ nodes {{ {FOREIGNER_FIELDS} "
        f"residence {{ {RESIDENCE} }} }} }}"
    )), {}), 30),
    Family("list up and down the area tree (issue 8's attack)", lambda n: (
        f"{{ foreigners(first: {n}) {{ nodes {{ residence {{ area {{ parent {{ parent {{ "
        "children { children { code name foreignerCount } } } } } } } } }", {}), 1000),
    Family("area tree x aliases", lambda n: (_aliases(n, (
        f'area(code: "{CITY}") {{ children {{ children {{ code foreignerCount '
        "parent { code } } } }")), {}), 30),
    Family("every area's breakdown x aliases", lambda n: (_aliases(n, (
        f'areas(level: KELURAHAN) {{ {AREA_COUNTS} }}')), {}), 30),
    Family("every RW and its RTs x aliases", lambda n: (_aliases(n, (
        'areas(level: RW) { code name foreignerCount byPermitType { key count } '
        "children { code foreignerCount } }")), {}), 30),
    Family("reports with relations", lambda n: (
        f"{{ reports(first: {n}) {{ nodes {{ id category text areaCode status createdAt "
        f"updatedAt receiptCode reporterContact area {{ {AREA_COUNTS} }} foreigner {{ "
        f"{FOREIGNER_FIELDS} residence {{ {RESIDENCE} }} }} }} }} }}", {}), 1000),
    Family("activities with relations", lambda n: (
        f"{{ activities(first: {n}) {{ nodes {{ id kind occurredAt areaCode latitude longitude "
        f"notes officer {{ id name rank unit }} area {{ {AREA_COUNTS} }} subject {{ "
        f"{FOREIGNER_FIELDS} }} report {{ id text }} }} }} }}", {}), 1000),
    Family("_entities flood", lambda n: (
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Foreigner { "
        f"{FOREIGNER_FIELDS} residence {{ {RESIDENCE} }} }} ... on Area {{ {AREA_COUNTS} }} }} }}",
        {"r": [{"__typename": "Foreigner", "id": str(i + 1)} for i in range(n)]}), 20000),
    Family("aliased counts, batch of 10 (SQL per root field)", lambda n: (_aliases(n, (
        'foreigners(first: 1, orderBy: PERMIT_EXPIRES_ON, filter: {expiresBefore: '
        '"2100-01-01"}) { totalCount nodes { id } }')), {}), 30, batch=True),
    Family("report texts x aliases, batch of 10", lambda n: (
        "{ reports(first: 1000) { nodes { "
        + " ".join(f"t{i}: text" for i in range(n)) + " } } }", {}), 29, batch=True),
    Family("list, batch of 10", lambda n: (
        f"{{ foreigners(first: {n}) {{ nodes {{ {FOREIGNER_FIELDS} residence {{ {RESIDENCE} }} "
        f"{PERMITS} }} }} }}", {}), 1000, batch=True),
    Family("introspection, nested", lambda n: (
        "{ __schema { types { name fields { name args { name type { name } } type { name "
        + "fields { name type { name fields { name } } } " * min(n, 3)
        + "} } } } }", {}), 3),
]

REFUSED = {"QUERY_TOO_COMPLEX", "TOO_MANY_ALIASES", "QUERY_TOO_DEEP", "FORBIDDEN",
           "PAYLOAD_TOO_LARGE"}


@dataclass
class Outcome:
    role: str
    family: str
    size: int
    seconds: float
    extra_mib: float
    healthz_p99: float
    small_p99: float
    result: str


def personas(url: str) -> dict[str, str]:
    settings = bench_settings(url)
    return {
        "immigration_officer": mint_dev_token(settings, "immigration_officer", area=CITY,
                                              officer_id=_officer_id(url, supervisor=False)),
        "immigration_supervisor": mint_dev_token(settings, "immigration_supervisor",
                                                 area=CITY,
                                                 officer_id=_officer_id(url, supervisor=True)),
        "police (city)": mint_dev_token(settings, "police", area=CITY),
        "police (kecamatan)": mint_dev_token(settings, "police", area=SETIABUDI),
        "military": mint_dev_token(settings, "military", area=SETIABUDI),
        "district": mint_dev_token(settings, "district", area=SETIABUDI),
        "neighbourhood": mint_dev_token(settings, "neighbourhood", area=_an_rw(url)),
        "auditor": mint_dev_token(settings, "auditor"),
        "public": "",
    }


def _scalar(url: str, sql: str) -> Any:
    import asyncio

    from sqlalchemy import text

    from resolvers.db import create_engine

    async def run() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text(sql))).scalar()
        finally:
            await engine.dispose()

    return asyncio.run(run())


LONG_REPORTS = 150
LONG_TEXT = "\U0001d54f" * 3990  # the longest text submitReport takes, 4 bytes a character


def add_long_reports(url: str) -> None:
    """What an attacker can plant over time with submitReport (a neighbourhood head reads
    them back, police in their jurisdiction): reports whose text is as long as allowed, in
    the busiest RT of the demo kecamatan."""
    import asyncio
    import datetime as dt
    import secrets

    from sqlalchemy import func, insert, select

    from policies.area_codes import located_codes
    from resolvers.db import create_engine
    from resolvers.models import Report, Residence

    async def run() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                planted = await conn.scalar(select(func.count()).select_from(Report).where(
                    func.length(Report.text) > 3000))
                if planted >= LONG_REPORTS:
                    return
                rt = await conn.scalar(
                    select(Residence.rt_code).where(Residence.kecamatan_code == SETIABUDI)
                    .group_by(Residence.rt_code).order_by(func.count().desc()).limit(1))
                now = dt.datetime.now(dt.UTC)
                await conn.execute(insert(Report), [{
                    "receipt_code": "SSD-" + "-".join(secrets.token_hex(2).upper()
                                                      for _ in range(4)),
                    "category": "other", "text": LONG_TEXT, "reporter_contact": None,
                    "submitted_by": None, "status": "received", "foreigner_id": None,
                    "assigned_officer_id": None, "created_at": now, "updated_at": now,
                    **located_codes(rt)} for _ in range(LONG_REPORTS - planted)])
        finally:
            await engine.dispose()

    asyncio.run(run())


def _officer_id(url: str, supervisor: bool) -> int:
    condition = "is_supervisor" if supervisor else "NOT is_supervisor"
    return int(_scalar(url, f"SELECT min(id) FROM officer WHERE {condition}"))


def _an_rw(url: str) -> str:
    return str(_scalar(url, "SELECT min(code) FROM area WHERE level = 'rw'"))


def _post(client: httpx.Client, base: str, role: str, token: str, family: Family, n: int
          ) -> httpx.Response:
    query, variables = family.make(n)
    operation = {"query": query, "variables": variables}
    body: Any = [operation] * 10 if family.batch else operation
    return client.post(f"{base}/graphql", json=body, headers=headers(token, role),
                       timeout=TIMEOUT)


def _codes(response: httpx.Response) -> set[str]:
    payload = response.json()
    results = payload if isinstance(payload, list) else [payload]
    return {e.get("extensions", {}).get("code", "?") for r in results
            for e in r.get("errors") or []}


def largest_accepted(client: httpx.Client, base: str, role: str, token: str, family: Family
                     ) -> int:
    """Binary search for the largest size the gateway does not refuse before running."""
    def accepted(n: int) -> bool:
        query, variables = family.make(n)
        # Every root field under @skip(if: true): the limits judge the document as it is
        # (they ignore directives), and then nothing runs.
        probe = {"query": _skipped(query), "variables": variables}
        response = client.post(f"{base}/graphql", json=[probe] * 10 if family.batch else probe,
                               headers=headers(token, role), timeout=TIMEOUT)
        return not (_codes(response) & REFUSED)

    low, high = 0, family.largest
    while low < high:
        middle = (low + high + 1) // 2
        if accepted(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _skipped(query: str) -> str:
    document = parse(query)
    skip = DirectiveNode(name=NameNode(value="skip"), arguments=(ArgumentNode(
        name=NameNode(value="if"), value=BooleanValueNode(value=True)),))
    definitions = []
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            selections = tuple(
                replace(s, directives=(*(s.directives or ()), skip))
                if isinstance(s, FieldNode) else s
                for s in definition.selection_set.selections)
            definition = replace(definition, selection_set=replace(
                definition.selection_set, selections=selections))
        definitions.append(definition)
    return print_ast(replace(document, definitions=tuple(definitions)))


class Prober:
    """Sends /healthz and a small query every 50 ms, recording latencies."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.healthz: list[float] = []
        self.small: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(path, sink), daemon=True)
                         for path, sink in (("healthz", self.healthz), ("small", self.small))]

    def _loop(self, kind: str, sink: list[float]) -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                if kind == "healthz":
                    client.get(f"{self.base}/healthz")
                else:
                    client.post(f"{self.base}/graphql", json={"query": "{ sisadaMe { role } }"})
                sink.append(time.perf_counter() - started)
                self._stop.wait(0.05)

    def __enter__(self) -> Prober:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


class MemorySampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = _rss_mib(pid)
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mib(self.pid))
            self._stop.wait(0.005)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def p99(values: list[float]) -> float:
    return percentile(values, 0.99)


def run_one(client: httpx.Client, base: str, pid: int, role: str, token: str,
            family: Family) -> Outcome | None:
    size = largest_accepted(client, base, role, token, family)
    if size == 0:
        print(f"  {role:24} {family.name:48} refused at every size", file=sys.stderr)
        return None
    with Prober(base) as prober, MemorySampler(pid) as memory:
        time.sleep(0.2)  # the probes' latency without load, as a base
        started = time.perf_counter()
        response = _post(client, base, role, token, family, size)
        seconds = time.perf_counter() - started
        time.sleep(0.1)
    codes = _codes(response)
    result = ",".join(sorted(codes)) if codes else "ok"
    return Outcome(role, family.name, size, seconds, memory.peak - memory.baseline,
                   p99(prober.healthz), p99(prober.small), f"{response.status_code} {result}")


@contextlib.contextmanager
def database(backend: str, foreigners: int) -> Iterator[Databases]:
    if backend == "sqlite":
        yield sqlite_database(foreigners)
    else:
        with postgres_database(foreigners) as databases:
            yield databases


def run_backend(backend: str, foreigners: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with database(backend, foreigners) as databases:
        url = databases.office
        add_long_reports(url)
        # Identity comes from the registry, its own process, as in production: a heavy
        # document that selects names costs its upstream requests too.
        registry = start_registry(databases.registry)
        server = None
        try:
            server = start("sisada", url, registry)
            tokens = personas(url)
            with httpx.Client() as client:
                for role, token in tokens.items():
                    for family in FAMILIES:
                        outcome = run_one(client, server.url, server.process.pid, role,
                                          token, family)
                        if outcome is not None:
                            print(f"  {backend} {role:24} {family.name:48} n={outcome.size:<6}"
                                  f" {outcome.seconds:6.2f} s {outcome.extra_mib:7.1f} MiB "
                                  f"healthz p99 {outcome.healthz_p99 * 1000:6.0f} ms "
                                  f"{outcome.result}", file=sys.stderr)
                            outcomes.append(outcome)
        finally:
            if server is not None:
                stop([server])
            stop_registry(registry)
    return outcomes


def report(backend: str, foreigners: int, outcomes: list[Outcome]) -> str:
    lines = [f"### Worst allowed request per role — {backend}, {foreigners:,} foreigners", "",
             "| role | heaviest document family (size) | wall | extra memory | /healthz p99 "
             "| small query p99 | answer |", "|---|---|---|---|---|---|---|"]
    worst_by_role: dict[str, Outcome] = {}
    for outcome in outcomes:
        known = worst_by_role.get(outcome.role)
        # A refusal (FORBIDDEN) is heaviest only where the role may run nothing else.
        if known is None or (_ran(outcome), outcome.seconds) > (_ran(known), known.seconds):
            worst_by_role[outcome.role] = outcome
    for role, o in worst_by_role.items():
        lines.append(f"| {role} | {o.family} ({o.size}) | {o.seconds:.2f} s | "
                     f"{o.extra_mib:.0f} MiB | {o.healthz_p99 * 1000:.0f} ms | "
                     f"{o.small_p99 * 1000:.0f} ms | {o.result} |")
    worst = max(outcomes, key=lambda o: o.seconds)
    memory = max(outcomes, key=lambda o: o.extra_mib)
    healthz = max(outcomes, key=lambda o: o.healthz_p99)
    lines += ["", f"- worst wall time: {worst.seconds:.2f} s ({worst.role}, {worst.family}) "
              f"— bar ≤ 2 s: {'met' if worst.seconds <= 2 else 'NOT met'}",
              f"- most extra memory: {memory.extra_mib:.0f} MiB ({memory.role}, {memory.family})"
              f" — bar ≤ 200 MB: {'met' if memory.extra_mib <= 200 else 'NOT met'}",
              f"- worst /healthz p99 meanwhile: {healthz.healthz_p99 * 1000:.0f} ms "
              f"— bar ≤ 1 s: {'met' if healthz.healthz_p99 <= 1 else 'NOT met'}",
              f"- runs: {len(outcomes)} (role x family, each at its largest accepted size); "
              f"median wall {statistics.median(o.seconds for o in outcomes):.2f} s"]
    return "\n".join(lines)


def _ran(outcome: Outcome) -> bool:
    return "FORBIDDEN" not in outcome.result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--foreigners", type=int, default=10_000)
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        print(report(backend, args.foreigners, run_backend(backend, args.foreigners)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
