"""Identity from the central registry: what names cost, over real HTTP, in one run.

    python -m bench.registry [--backend sqlite|postgresql|both] [--foreigners 10000]
                             [--rounds 41]

Per backend: seeds (or reuses) the office database and the registry's, starts the stand-in
registry as its own process recording every request it receives (`sisada registry serve
--record`), and the real gateway as its own uvicorn process pointed at it, with the access
trail off (`SISADA_TRAIL_ENABLED=false`): issue 9's bars measure identity from the registry
alone, as defined before the trail existed; the trail's own cost is issue 10's bar
(bench/trail.py, trail on vs off). Then:

- upstream requests per query for immigration's foreigner list selecting names, at 10,
  100 and 1,000 rows (bar: 1 each, constant in list length), read from the registry's
  own record (which also shows how many representations and which fields each carried);
- the 1,000-row immigration list with names vs the same list without identity fields,
  interleaved in shuffled order over many rounds (bar: median ratio ≤ 1.5); the registry's
  `_entities` answer for the same 1,000 people, sent straight to it with the gateway's own
  document, is timed in the same rounds, so the difference can be told apart;
- the police (Setiabudi) list with the same document (bar: 0 upstream requests — the
  names are null by policy, and the registry is never called).

Prints a table per backend and a PASS/FAIL line per bar; exits non-zero if a bar fails.
`--profile N` adds cProfile tables (gateway and registry); `--decompose R` times the parts
of the names' cost without a profiler (registry, reading its answer, the gateway's own
share with an in-memory identity source, with and without the access trail; its
in-process gateways have the trail on unless a row says "trail off").
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import random
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.run import (
    DATA,
    ROOT,
    Databases,
    Registry,
    Server,
    headers,
    postgres_database,
    sqlite_database,
    start,
    start_registry,
    stop,
    stop_registry,
)
from bench.serve import BENCH_REGISTRY_TOKEN, bench_settings
from gateway.auth import mint_dev_token

CITY = "31.74"
SETIABUDI = "31.74.02"
NAMES_BAR = 1.5
# Issue 9's gateway runs without the access trail (issue 10 measures the trail's cost).
TRAIL_OFF = {"SISADA_TRAIL_ENABLED": "false"}

NAMES = ("query($first: Int!) { foreigners(first: $first) { nodes { id fullName passportNumber "
         "nationality permitType residence { areaCode } } } }")
PLAIN = ("query($first: Int!) { foreigners(first: $first) { nodes { id "
         "nationality permitType residence { areaCode } } } }")
IDENTITY_FIELDS = ("fullName", "passportNumber")
REGISTRY_FIELDS = (*IDENTITY_FIELDS, "birthDate", "photoUrl", "number", "sponsorName")


@dataclass
class Case:
    name: str
    persona: str  # "immigration", "police" or "registry" (straight to the registry)
    query: str
    first: int


CASES = [
    Case("immigration, 10 rows, names", "immigration", NAMES, 10),
    Case("immigration, 100 rows, names", "immigration", NAMES, 100),
    Case("immigration, 1,000 rows, names", "immigration", NAMES, 1000),
    Case("immigration, 1,000 rows, no identity fields", "immigration", PLAIN, 1000),
    Case("police (Setiabudi), 1,000 rows, names requested", "police", NAMES, 1000),
    Case("registry `_entities` alone, the 1,000 people", "registry", "", 1000),
]
WITH_NAMES, WITHOUT = CASES[2].name, CASES[3].name


@dataclass
class Measured:
    upstream: dict[str, int] = field(default_factory=dict)  # requests per query
    representations: dict[str, list[int]] = field(default_factory=dict)
    selected: dict[str, str] = field(default_factory=dict)  # the fields the registry got
    samples: dict[str, list[float]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def median(self, case: str) -> float:
        return statistics.median(self.samples[case])

    def p95(self, case: str) -> float:
        values = sorted(self.samples[case])
        return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


def tokens(url: str) -> dict[str, str]:
    settings = bench_settings(url)
    return {"immigration": mint_dev_token(settings, "immigration_officer", area=CITY,
                                          officer_id=1),
            "police": mint_dev_token(settings, "police", area=SETIABUDI)}


def gateway_request(client: httpx.Client, server: Server, case: Case, token: str
                    ) -> tuple[float, list[dict[str, Any]]]:
    started = time.perf_counter()
    response = client.post(f"{server.url}/graphql",
                           json={"query": case.query, "variables": {"first": case.first}},
                           headers=headers(token, case.persona))
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"{case.name}: {body['errors'][:2]}")
    return elapsed, body["data"]["foreigners"]["nodes"]


def registry_request(client: httpx.Client, registry: Registry, body: bytes) -> float:
    """The gateway's own `_entities` document for the 1,000 people, straight to the registry
    (the same bytes it received from the gateway)."""
    started = time.perf_counter()
    response = client.post(registry.url, content=body, headers={
        "authorization": f"Bearer {BENCH_REGISTRY_TOKEN}", "content-type": "application/json"})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    if response.json().get("errors"):
        raise RuntimeError("the registry answered errors")
    return elapsed


def count_upstream(client: httpx.Client, server: Server, registry: Registry,
                   toks: dict[str, str], measured: Measured) -> bytes:
    """One query at a time, the registry's record cleared before each: what it received.
    Returns the body of the 1,000-row request, for timing the registry alone."""
    import orjson

    entities_body = b""
    for case in CASES:
        if case.persona == "registry":
            continue
        registry.clear()
        _, nodes = gateway_request(client, server, case, toks[case.persona])
        received = registry.requests()
        measured.upstream[case.name] = len(received)
        measured.rows[case.name] = len(nodes)
        measured.representations[case.name] = [
            len((r.get("variables") or {}).get("representations") or []) for r in received]
        measured.selected[case.name] = " ".join(
            sorted({f for r in received for f in REGISTRY_FIELDS
                    if f in (r.get("query") or "")}))
        named = sum(1 for n in nodes if n.get("fullName") is not None)
        if case.query == NAMES and case.persona == "immigration" and named != len(nodes):
            raise RuntimeError(f"{case.name}: {len(nodes) - named} rows without a name")
        if case.persona == "police" and named:
            raise RuntimeError(f"{case.name}: police read {named} names")
        if case.name == WITH_NAMES and received:
            request = received[0]
            entities_body = orjson.dumps({"query": request["query"],
                                          "variables": request["variables"]})
    registry.clear()
    return entities_body


def measure(server: Server, registry: Registry, toks: dict[str, str], rounds: int,
            measured: Measured) -> bytes:
    rng = random.Random(9)
    with httpx.Client(timeout=120) as client:
        entities_body = count_upstream(client, server, registry, toks, measured)
        for case in CASES:  # warm-up
            for _ in range(2):
                if case.persona == "registry":
                    registry_request(client, registry, entities_body)
                else:
                    gateway_request(client, server, case, toks[case.persona])
        registry.clear()
        for round_no in range(rounds):
            order = list(CASES)
            rng.shuffle(order)
            for case in order:
                if case.persona == "registry":
                    elapsed = registry_request(client, registry, entities_body)
                else:
                    elapsed, _ = gateway_request(client, server, case, toks[case.persona])
                measured.samples.setdefault(case.name, []).append(elapsed)
            if (round_no + 1) % 10 == 0 or round_no + 1 == rounds:
                print(f"  round {round_no + 1}/{rounds}", file=sys.stderr)
        # Over the rounds, too, every query with names cost the registry one request.
        named_cases = sum(1 for c in CASES if c.persona == "immigration" and c.query == NAMES)
        received = len(registry.requests())
        expected = rounds * (named_cases + 1)  # + the registry-alone request
        if received != expected:
            print(f"  warning: the registry received {received} requests during the rounds, "
                  f"expected {expected}", file=sys.stderr)
    return entities_body


@contextlib.contextmanager
def databases(backend: str, foreigners: int) -> Iterator[Databases]:
    if backend == "sqlite":
        yield sqlite_database(foreigners)
    else:
        with postgres_database(foreigners) as dbs:
            yield dbs


def run_backend(backend: str, args: argparse.Namespace) -> tuple[str, list[tuple[str, bool]]]:
    measured = Measured()
    profile = ""
    with databases(backend, args.foreigners) as dbs:
        record = DATA / f"registry-bench-{os.getpid()}.jsonl"
        registry = start_registry(dbs.registry, record)
        server = None
        try:
            server = start("sisada", dbs.office, registry,
                           {**TRAIL_OFF, **({"SISADA_BENCH_PROFILE": "1"} if args.profile
                                            else {})})
            toks = tokens(dbs.office)
            entities_body = measure(server, registry, toks, args.rounds, measured)
            if args.profile:
                profile = profile_gateway(server, toks, args.profile, backend)
                profile += "\n\n" + profile_registry(dbs.registry, entities_body, args.profile)
            if args.decompose:
                stop([server])
                server = None
                parts = decompose(dbs, registry, toks, entities_body, args.decompose)
                profile = (profile + "\n\n" if profile else "") + parts
        finally:
            if server is not None:
                stop([server])
            stop_registry(registry)
            record.unlink(missing_ok=True)
    text, bars = report(backend, args, measured)
    return (text + "\n\n" + profile if profile else text), bars


# -- where the time goes (--profile N) -----------------------------------------------------


def _per_function(stats: pstats.Stats, requests: int) -> dict[str, tuple[float, float, int]]:
    """function → (own seconds, cumulative seconds, calls), per request."""
    table: dict[str, tuple[float, float, int]] = {}
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in \
            stats.stats.items():  # type: ignore[attr-defined]
        short = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        table[f"{short}:{line} {name}"] = (tottime / requests, cumtime / requests,
                                           calls // requests)
    return table


EXTRA_PLAIN = ("query($first: Int!) { foreigners(first: $first) { nodes { id sex ageBand "
               "nationality permitType residence { areaCode } } } }")


class _MemoryIdentity:
    """An identity source answering from a dict, at once: the gateway's own share of names
    (loader, attaching, resolving, encoding), without the registry."""

    def __init__(self, people: dict[int, dict[str, Any]]) -> None:
        self.people = people

    async def entities(self, keys: Any, selections: Any, request_id: str) -> list[Any]:
        return [{f: self.people[k.id][f] for f in selections[k.type_name]} for k in keys]

    async def ids_by_document(self, number: str, request_id: str) -> list[int]:
        return []

    async def ids_by_name(self, text: str, limit: int, request_id: str) -> list[int]:
        return []


def decompose(dbs: Databases, registry: Registry, toks: dict[str, str], entities_body: bytes,
              rounds: int) -> str:
    """Without a profiler: the gateway in this process (ASGI transport, no HTTP to it) with
    its real registry client, the same with an in-memory identity source, the plain list and
    the plain list with two more plain-attribute fields; the registry over HTTP; inside the
    registry, its SQL and its GraphQL execution apart. Interleaved, medians."""
    import asyncio

    import orjson
    from sqlalchemy import select

    from examples.registry.models import Person
    from examples.registry.schema import RegistryContext, build_registry_schema
    from gateway.app import create_app
    from resolvers.db import create_engine

    async def run() -> dict[str, float]:
        settings = bench_settings(dbs.office, registry.url, BENCH_REGISTRY_TOKEN)
        real, memory = create_app(settings), create_app(settings)
        # The same without the access trail (the identity reads are then not recorded):
        # what recording 1,000 reads costs, where the gateway records them.
        untrailed = create_app(settings.model_copy(update={"trail_enabled": False}))
        sent = headers(toks["immigration"], "immigration")
        registry_headers = {"authorization": f"Bearer {BENCH_REGISTRY_TOKEN}",
                            "content-type": "application/json"}
        request = orjson.loads(entities_body)
        ids = [int(r["id"]) for r in request["variables"]["representations"]]
        schema, engine = build_registry_schema(), create_engine(dbs.registry)
        registry_context = RegistryContext(engine=engine)
        samples: dict[str, list[float]] = {}
        async with real.router.lifespan_context(real), \
                memory.router.lifespan_context(memory), \
                untrailed.router.lifespan_context(untrailed), \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=untrailed),
                                  base_url="http://gateway", timeout=60) as untrailed_client, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=real),
                                  base_url="http://gateway", timeout=60) as real_client, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=memory),
                                  base_url="http://gateway", timeout=60) as memory_client, \
                httpx.AsyncClient(timeout=60) as upstream:
            answer = await real_client.post("/graphql", headers=sent, json={
                "query": NAMES, "variables": {"first": 1000}})
            people = _MemoryIdentity({
                int(n["id"]): n for n in answer.json()["data"]["foreigners"]["nodes"]})
            memory.state.sisada.registry = untrailed.state.sisada.registry = people

            async def gateway(client: httpx.AsyncClient, query: str) -> None:
                response = await client.post("/graphql", headers=sent, json={
                    "query": query, "variables": {"first": 1000}})
                if response.json().get("errors"):
                    raise RuntimeError(response.text[:300])

            async def over_http() -> None:
                response = await upstream.post(registry.url, content=entities_body,
                                               headers=registry_headers)
                orjson.loads(response.content)

            async def sql() -> None:
                async with engine.connect() as conn:
                    await conn.execute(select(Person.id, Person.full_name,
                                              Person.passport_number).where(Person.id.in_(ids)))

            async def execute() -> None:
                await schema.execute(request["query"], variable_values=request["variables"],
                                     context_value=registry_context)

            parts = {
                "gateway: list without identity fields": lambda: gateway(memory_client, PLAIN),
                "gateway: + two plain-attribute fields (sex, ageBand)":
                    lambda: gateway(memory_client, EXTRA_PLAIN),
                "gateway: with names, in-memory identity source, trail on":
                    lambda: gateway(memory_client, NAMES),
                "gateway: with names, in-memory identity source, trail off":
                    lambda: gateway(untrailed_client, NAMES),
                "gateway: with names, the registry over HTTP, trail on":
                    lambda: gateway(real_client, NAMES),
                "registry over HTTP (its request, answer read)": over_http,
                "registry: its SQL alone": sql,
                "registry: schema.execute (SQL included)": execute,
            }
            rng = random.Random(5)
            for round_no in range(rounds + 3):
                order = list(parts)
                rng.shuffle(order)
                for name in order:
                    started = time.perf_counter()
                    await parts[name]()
                    if round_no >= 3:
                        samples.setdefault(name, []).append(time.perf_counter() - started)
        await engine.dispose()
        return {name: statistics.median(samples[name]) for name in parts}

    medians = asyncio.run(run())
    lines = [f"#### Where the names' time goes, without a profiler ({rounds} interleaved "
             "rounds, medians, the gateway in-process)", "", "| part | median ms |", "|---|---|"]
    lines += [f"| {name} | {value * 1000:.1f} |" for name, value in medians.items()]
    return "\n".join(lines)


def profile_gateway(server: Server, toks: dict[str, str], requests: int, backend: str) -> str:
    """cProfile in the gateway process over `requests` of the 1,000-row list with names,
    then as many without identity fields; the functions whose time differs the most."""
    results: dict[str, tuple[dict[str, tuple[float, float, int]], float, float]] = {}
    with httpx.Client(timeout=120) as client:
        for case in (CASES[2], CASES[3]):
            kind = "names" if case.query == NAMES else "plain"
            path = DATA / f"profile-{backend}-{kind}.pstats"
            client.post(f"{server.url}/bench/profile/start").raise_for_status()
            walls = [gateway_request(client, server, case, toks["immigration"])[0]
                     for _ in range(requests)]
            client.post(f"{server.url}/bench/profile/stop",
                        params={"path": str(path)}).raise_for_status()
            stats = pstats.Stats(str(path))
            results[case.name] = (_per_function(stats, requests),
                                  stats.total_tt / requests,  # type: ignore[attr-defined]
                                  statistics.median(walls))
    names, plain = results[WITH_NAMES], results[WITHOUT]
    lines = [f"#### Profile of the gateway (cProfile, {requests} requests each, "
             "per request; profiling slows Python down, so compare rows with each other)", "",
             f"- with names: {names[1] * 1000:.1f} ms of Python on the event loop, "
             f"wall {names[2] * 1000:.1f} ms",
             f"- without identity fields: {plain[1] * 1000:.1f} ms of Python, "
             f"wall {plain[2] * 1000:.1f} ms", "",
             "Functions whose cumulative time grows most with names (ms per request):", "",
             "| function | calls with names | cumulative with / without | own with / without |",
             "|---|---|---|---|"]
    keys = set(names[0]) | set(plain[0])
    zero = (0.0, 0.0, 0)

    def grow(key: str) -> float:
        return names[0].get(key, zero)[1] - plain[0].get(key, zero)[1]

    for key in sorted(keys, key=grow, reverse=True)[:25]:
        w, wo = names[0].get(key, zero), plain[0].get(key, zero)
        lines.append(f"| `{key}` | {w[2]} | {w[1] * 1000:.1f} / {wo[1] * 1000:.1f} "
                     f"| {w[0] * 1000:.2f} / {wo[0] * 1000:.2f} |")
    lines += ["", "Own time that grows most with names (ms per request):", "",
              "| function | calls with / without | own with / without |", "|---|---|---|"]

    def own(key: str) -> float:
        return names[0].get(key, zero)[0] - plain[0].get(key, zero)[0]

    for key in sorted(keys, key=own, reverse=True)[:20]:
        w, wo = names[0].get(key, zero), plain[0].get(key, zero)
        lines.append(f"| `{key}` | {w[2]} / {wo[2]} | {w[0] * 1000:.2f} / {wo[0] * 1000:.2f} |")
    return "\n".join(lines)


def profile_registry(database_url: str, body: bytes, requests: int) -> str:
    """The registry's answer to the gateway's 1,000-entity request, in this process (ASGI
    transport, no network), timed and profiled."""
    import asyncio

    from examples.registry import create_registry_app

    async def run() -> tuple[float, pstats.Stats]:
        app = create_registry_app(database_url, BENCH_REGISTRY_TOKEN)
        headers = {"authorization": f"Bearer {BENCH_REGISTRY_TOKEN}",
                   "content-type": "application/json"}
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://registry") as client:
            for _ in range(3):
                (await client.post("/graphql", content=body, headers=headers)).raise_for_status()
            walls = []
            for _ in range(requests):
                started = time.perf_counter()
                (await client.post("/graphql", content=body, headers=headers)).raise_for_status()
                walls.append(time.perf_counter() - started)
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(requests):
                await client.post("/graphql", content=body, headers=headers)
            profile.disable()
            return statistics.median(walls), pstats.Stats(profile)

    wall, stats = asyncio.run(run())
    table = _per_function(stats, requests)
    lines = [f"#### The registry alone, 1,000 entities (in-process, {requests} requests)", "",
             f"- median {wall * 1000:.1f} ms per request without the profiler "
             "(no network, no request record)", "",
             "| function | calls | cumulative ms | own ms |", "|---|---|---|---|"]
    for key in sorted(table, key=lambda k: table[k][1], reverse=True)[:20]:
        own, cumulative, calls = table[key]
        lines.append(f"| `{key}` | {calls} | {cumulative * 1000:.1f} | {own * 1000:.2f} |")
    return "\n".join(lines)


def report(backend: str, args: argparse.Namespace, m: Measured
           ) -> tuple[str, list[tuple[str, bool]]]:
    label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[backend]
    lines = [f"### {label}, {args.foreigners:,} foreigners, {args.rounds} interleaved rounds",
             "", "The gateway runs with the access trail off (`SISADA_TRAIL_ENABLED=false`): "
             "issue 9's bars measure identity from the registry alone; the trail's own cost "
             "is issue 10's bar (`./scripts/bench-trail`).", "",
             "| query | rows | median / p95 ms | registry requests | representations "
             "| identity fields sent upstream |", "|---|---|---|---|---|---|"]
    for case in CASES:
        timing = f"{m.median(case.name) * 1000:,.1f} / {m.p95(case.name) * 1000:,.1f}"
        if case.persona == "registry":
            lines.append(f"| {case.name} | {case.first} | {timing} | — | {case.first} "
                         f"| {' '.join(IDENTITY_FIELDS)} |")
            continue
        reps = ", ".join(str(n) for n in m.representations[case.name]) or "—"
        lines.append(f"| {case.name} | {m.rows[case.name]} | {timing} "
                     f"| {m.upstream[case.name]} | {reps} | {m.selected[case.name] or '—'} |")
    ratio = m.median(WITH_NAMES) / m.median(WITHOUT)
    extra = m.median(WITH_NAMES) - m.median(WITHOUT)
    alone = m.median(CASES[5].name)
    lines += ["", f"Names cost {extra * 1000:,.1f} ms on the 1,000-row list (median with "
              f"names minus median without); the registry alone answers the same `_entities` in "
              f"{alone * 1000:,.1f} ms, so {max(extra - alone, 0) * 1000:,.1f} ms are the "
              "gateway's (sending, reading and resolving the two fields on 1,000 rows)."]
    counts = [m.upstream[c.name] for c in CASES[:3]]
    police = m.upstream[CASES[4].name]
    bars = [
        (f"upstream requests, immigration list with names, 10 / 100 / 1,000 rows: "
         f"{' / '.join(map(str, counts))} (bar: 1 each)", counts == [1, 1, 1]),
        (f"1,000-row list with names / without identity fields, access trail off: "
         f"{ratio:.3f} ({m.median(WITH_NAMES) * 1000:,.1f} / {m.median(WITHOUT) * 1000:,.1f} ms)"
         f" (bar: ≤ {NAMES_BAR})", ratio <= NAMES_BAR),
        (f"upstream requests, police list with names requested: {police} (bar: 0)",
         police == 0),
    ]
    lines.append("")
    lines += [f"- {'PASS' if ok else 'FAIL'} — {label}: {text}" for text, ok in bars]
    return "\n".join(lines), bars


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-registry", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--foreigners", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="after the rounds, profile N requests of each 1,000-row list in "
                             "the gateway (cProfile) and the registry's answer alone")
    parser.add_argument("--decompose", type=int, default=0, metavar="R",
                        help="after the rounds, time the parts of the names' cost without a "
                             "profiler (R interleaved rounds, gateway in-process)")
    args = parser.parse_args(argv)
    if args.foreigners < 1000:
        parser.error("--foreigners must be at least 1000 (the list is 1,000 rows)")
    print(f"# Identity from the registry\n\nmachine: {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}\n")
    failed = False
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        text, bars = run_backend(backend, args)
        print(text, "\n", flush=True)
        failed |= not all(ok for _, ok in bars)
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
