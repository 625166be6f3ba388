"""A load test: the frontends' mixed workload against two replicas, for minutes (issue 12, §2).

    python -m bench.load [--clients 24] [--seconds 240] [--subscribers 20] [--foreigners 3000]

Seeds a PostgreSQL office database and the stand-in registry's, starts the registry and
two real gateway processes (`sisada serve`) sharing PostgreSQL and Redis (rate limits and
the event bus), then runs `--clients` concurrent clients for `--seconds`, each a persona of
the frontends sending, one after another with no pause, the operations that persona's
screens send (weights below): immigration officers list foreigners with their names (the
registry and the access trail on the path), open one, check a document number and record
their field activities; the supervisor reads the activity log and triages reports; police,
military and district read their jurisdiction's lists and statistics; neighbourhood heads
read their RT's count; the public reads kecamatan totals, submits reports and follows one
by its receipt code; the auditor reads the trail. Clients are dealt to the two replicas
alternately. `--subscribers` WebSocket subscribers (the supervisor's activity feed and the
police's report feed, on both replicas) receive the events the load's own mutations cause;
each event's delivery latency counts as the operation `event delivery`.

Every request and event is timed on the client. Each gateway's resident memory (VmRSS from
/proc) is read every 5 s; after a warm-up of `--warmup` seconds (outside the minutes
compared), the median of the first minute is compared with the median of the last.

Bars: 0 errors other than rate limits (HTTP 429 `RATE_LIMITED`: the bench's clients share
one address, so per-IP limits are raised to fit them while per-token limits stay as
shipped), and each replica's memory flat: ≤ 10 % growth between the first and last minute.
p50/p99 per operation are reported. Prints a table and PASS/FAIL per bar; exits non-zero if
a bar fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from bench.run import Server, percentile, postgres_database, start_registry, stop_registry
from bench.serve import BENCH_REGISTRY_TOKEN, bench_settings
from bench.subscriptions import CITY, KECAMATAN, REDIS_URL, gateways, rss_kib, seeded_rts
from gateway.auth import mint_dev_token
from resolvers.seed import OFFICER_COUNT, SUPERVISOR_IDS

SETIABUDI = "31.74.02"
PURPOSE = "field_check"
MEMORY_BAR = 0.10
SAMPLE_SECONDS = 5.0
MINUTE = 60.0
# The bench's clients all come from 127.0.0.1; deployments see each client's address.
PER_IP = "1000000/minute"

FOREIGNERS = """query Foreigners($after: String) { foreigners(first: 20, after: $after) {
  nodes { id fullName nationality ageBand permitType permitStatus permitExpiresOn
  residence { areaCode } } pageInfo { endCursor hasNextPage } } }"""
FOREIGNER = """query Foreigner($id: ID!) { foreigner(id: $id) { id fullName passportNumber
  birthDate nationality sex permitType permitStatus permitExpiresOn sponsorType
  permits { permitType expiresOn } residence { streetAddress areaCode area { name } } } }"""
CHECK = """query Check($n: String!) { checkForeigner(documentNumber: $n) { registered
  foreigner { id fullName nationality permitType permitStatus permitExpiresOn
  residence { streetAddress areaCode } } } }"""
JURISDICTION = """query Jurisdiction { foreigners(first: 50) { nodes { id nationality sex
  ageBand permitType permitStatus permitExpiresOn residence { streetAddress areaCode } } } }"""
STATISTICS = """query Statistics($c: String!) { area(code: $c) { code name foreignerCount
  byNationality { key count } byPermitType { key count } } }"""
COUNT = """query Count($c: String!) { area(code: $c) { code foreignerCount } }"""
ACTIVITY_LOG = """query ActivityLog { activities(first: 30) { nodes { id kind occurredAt
  areaCode latitude longitude officer { id } } } }"""
REPORTS = """query Reports { reports(first: 30) { nodes { id status category text
  areaCode } } }"""
TRAIL = """query Trail { accessTrail(first: 20) { nodes { seq at role recordType fields
  purpose } } }"""
RECORD = """mutation Record($input: RecordActivityInput!) { recordActivity(input: $input) {
  id } }"""
SUBMIT = """mutation Submit($input: SubmitReportInput!) { submitReport(input: $input) {
  receiptCode } }"""
STATUS = """query Status($code: String!) { reportStatus(receiptCode: $code) { status } }"""

ACTIVITY_FEED = """subscription { activityRecorded { eventId activity { id notes } } }"""
REPORT_FEED = """subscription { reportUpdated { eventId report { id text } } }"""


@dataclass
class Outcomes:
    """Latencies (s) of answered operations, and what went wrong, per operation."""

    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    limited: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def error(self, operation: str, what: str) -> None:
        self.errors[operation].append(what[:300])


@dataclass
class World:
    """What the workload needs to know of the seeded data and the servers."""

    servers: list[Server]
    tokens: dict[str, str]
    rts: dict[str, str]
    passports: list[str]
    foreigner_ids: list[str]
    sent_at: dict[str, float] = field(default_factory=dict)  # marker → when sent
    receipts: list[str] = field(default_factory=list)


# -- operations ---------------------------------------------------------------------------


async def graphql(client: httpx.AsyncClient, server: Server, name: str, query: str,
                  variables: dict[str, Any] | None, token: str | None, out: Outcomes,
                  purpose: str | None = None) -> dict[str, Any] | None:
    headers = {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if purpose:
        headers["sisada-purpose"] = purpose
    started = time.monotonic()
    try:
        response = await client.post(f"{server.url}/graphql", headers=headers,
                                     json={"query": query, "variables": variables or {}})
    except httpx.HTTPError as exc:
        out.error(name, repr(exc))
        return None
    took = time.monotonic() - started
    if response.status_code == 429:
        out.limited[name] += 1
        return None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        out.error(name, f"{response.status_code}: {response.text}")
        return None
    errors = body.get("errors") or []
    if any((e.get("extensions") or {}).get("code") == "RATE_LIMITED" for e in errors):
        out.limited[name] += 1
        return None
    if response.status_code != 200 or errors or body.get("data") is None:
        out.error(name, f"{response.status_code}: {errors[:1] or body}")
        return None
    out.latency[name].append(took)
    return body["data"]


def _rt(world: World, rng: random.Random) -> str:
    return world.rts[rng.choice(KECAMATAN)]


async def officer_step(client: httpx.AsyncClient, server: Server, world: World,
                       rng: random.Random, out: Outcomes, token: str) -> None:
    pick = rng.random()
    if pick < 0.35:
        await graphql(client, server, "officer: foreigners with names", FOREIGNERS, None,
                      token, out, PURPOSE)
    elif pick < 0.6:
        await graphql(client, server, "officer: foreigner detail", FOREIGNER,
                      {"id": rng.choice(world.foreigner_ids)}, token, out, PURPOSE)
    elif pick < 0.85:
        number = (rng.choice(world.passports) if rng.random() < 0.8
                  else f"X{rng.randrange(10**8):08d}")
        await graphql(client, server, "officer: check document", CHECK, {"n": number}, token,
                      out, PURPOSE)
    else:
        marker = f"load-{uuid.uuid4().hex}"
        world.sent_at[marker] = time.monotonic()
        await graphql(client, server, "officer: record activity", RECORD, {"input": {
            "kind": "DOCUMENT_CHECK", "jointOperation": False, "areaCode": _rt(world, rng),
            "latitude": -6.24 - rng.random() / 100, "longitude": 106.82 + rng.random() / 100,
            "notes": marker}}, token, out)


async def supervisor_step(client: httpx.AsyncClient, server: Server, world: World,
                          rng: random.Random, out: Outcomes, token: str) -> None:
    if rng.random() < 0.5:
        await graphql(client, server, "supervisor: activity log", ACTIVITY_LOG, None, token,
                      out)
    else:
        await graphql(client, server, "supervisor: reports", REPORTS, None, token, out)


async def jurisdiction_step(role: str, client: httpx.AsyncClient, server: Server,
                            world: World, rng: random.Random, out: Outcomes,
                            token: str) -> None:
    if role != "district" and rng.random() < 0.6:
        await graphql(client, server, f"{role}: jurisdiction list", JURISDICTION, None, token,
                      out)
    else:
        await graphql(client, server, f"{role}: statistics", STATISTICS, {"c": SETIABUDI},
                      token, out)


async def public_step(client: httpx.AsyncClient, server: Server, world: World,
                      rng: random.Random, out: Outcomes, _token: str) -> None:
    pick = rng.random()
    if pick < 0.6:
        await graphql(client, server, "public: kecamatan totals", COUNT,
                      {"c": rng.choice(KECAMATAN)}, None, out)
    elif pick < 0.8 or not world.receipts:
        marker = f"load-{uuid.uuid4().hex}"
        world.sent_at[marker] = time.monotonic()
        data = await graphql(client, server, "public: submit report", SUBMIT, {"input": {
            "category": "OVERSTAY", "text": marker, "areaCode": _rt(world, rng)}}, None, out)
        if data:
            world.receipts.append(data["submitReport"]["receiptCode"])
    else:
        await graphql(client, server, "public: report status", STATUS,
                      {"code": rng.choice(world.receipts)}, None, out)


async def client_loop(index: int, world: World, deadline: float, out: Outcomes) -> None:
    """One frontend session: its persona's operations, one after another, until the end."""
    persona = PERSONAS[index % len(PERSONAS)]
    server = world.servers[index % len(world.servers)]
    rng = random.Random(index)
    token = world.tokens.get(f"client:{index}", "")
    async with httpx.AsyncClient(timeout=30) as client:
        while time.monotonic() < deadline:
            if persona == "officer":
                await officer_step(client, server, world, rng, out, token)
            elif persona == "supervisor":
                await supervisor_step(client, server, world, rng, out, token)
            elif persona in ("police", "military", "district"):
                await jurisdiction_step(persona, client, server, world, rng, out, token)
            elif persona == "neighbourhood":
                await graphql(client, server, "neighbourhood: RT count", COUNT,
                              {"c": world.rts[KECAMATAN[1]]}, token, out)
            elif persona == "auditor":
                await graphql(client, server, "auditor: trail", TRAIL, None, token, out)
            else:
                await public_step(client, server, world, rng, out, token)


async def subscriber(index: int, world: World, deadline: float, out: Outcomes,
                     ready: asyncio.Event, connected: list[int]) -> None:
    """A supervisor on the activity feed or police on the report feed; each event of the
    load's own mutations is timed from when its mutation was sent."""
    supervisor = index % 2 == 0
    server = world.servers[index % len(world.servers)]
    token = world.tokens["supervisor" if supervisor else "police_city"]
    url = server.url.replace("http://", "ws://") + "/graphql"
    name = "event delivery"
    try:
        async with connect(url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                           ping_interval=None, open_timeout=10) as ws:
            await ws.send(orjson.dumps({"type": "connection_init", "payload": {
                "authorization": f"Bearer {token}", "purpose": PURPOSE}}).decode())
            ack = orjson.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                out.error(name, f"no ack: {ack}")
                return
            await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": ACTIVITY_FEED if supervisor else REPORT_FEED}}).decode())
            connected.append(index)
            ready.set()
            while time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                        message = orjson.loads(await ws.recv())
                        if message.get("type") == "ping":  # the server's keep-alive
                            await ws.send('{"type":"pong"}')
                            continue
                        _delivered(message, world, out)
    except Exception as exc:  # the bench reports it; the run goes on
        out.error(name, repr(exc))


def _delivered(message: dict[str, Any], world: World, out: Outcomes) -> None:
    if message.get("type") != "next":
        out.error("event delivery", f"frame: {message}")
        return
    if message["payload"].get("errors"):
        out.error("event delivery", str(message["payload"]["errors"][:1]))
        return
    data = message["payload"]["data"]
    record = (data.get("activityRecorded") or {}).get("activity") or (
        data.get("reportUpdated") or {}).get("report") or {}
    marker = record.get("notes") or record.get("text") or ""
    sent = world.sent_at.get(marker)
    if sent is not None:
        out.latency["event delivery"].append(time.monotonic() - sent)


# -- the run ------------------------------------------------------------------------------


def replicas(database_url: str, registry_url: str) -> contextlib.AbstractContextManager[
        list[Server]]:
    """Two `sisada serve` processes as a deployment runs them: rate limits on (per-IP ones
    raised: every bench client is 127.0.0.1), the registry, Redis for both."""
    return gateways(database_url, {
        "SISADA_REGISTRY_URL": registry_url,
        "SISADA_REGISTRY_TOKEN": BENCH_REGISTRY_TOKEN,
        "SISADA_RATE_LIMITS_ENABLED": "true",
        "SISADA_RATE_LIMIT_PER_IP": PER_IP,
        "SISADA_RATE_LIMIT_SUBMIT_REPORT": PER_IP,
        "SISADA_RATE_LIMIT_REPORT_STATUS": PER_IP})


PERSONAS = ["officer", "officer", "officer", "supervisor", "police", "military", "district",
            "neighbourhood", "public", "public", "auditor"]


def make_tokens(database_url: str, clients: int, neighbourhood_rt: str) -> dict[str, str]:
    """A token per client (its own subject, as each user has: per-token limits apply to
    each), and the subscribers'."""
    settings = bench_settings(database_url)
    officers = [i for i in range(1, OFFICER_COUNT + 1) if i not in SUPERVISOR_IDS]
    supervisor = min(SUPERVISOR_IDS)

    def mint(persona: str, subject: str, officer: int) -> str:
        role, area, officer_id = {
            "officer": ("immigration_officer", CITY, officer),
            "supervisor": ("immigration_supervisor", CITY, supervisor),
            "police": ("police", SETIABUDI, None),
            "police_city": ("police", CITY, None),
            "military": ("military", SETIABUDI, None),
            "district": ("district", SETIABUDI, None),
            "neighbourhood": ("neighbourhood", neighbourhood_rt, None),
            "auditor": ("auditor", None, None),
        }[persona]
        return mint_dev_token(settings, role, area=area, officer_id=officer_id,
                              subject=subject)

    tokens = {"supervisor": mint("supervisor", "load-supervisor-feed", 0),
              "police_city": mint("police_city", "load-police-feed", 0)}
    for index in range(clients):
        persona = PERSONAS[index % len(PERSONAS)]
        if persona != "public":
            tokens[f"client:{index}"] = mint(persona, f"load-{persona}-{index}",
                                             officers[index % len(officers)])
    return tokens


async def discover(server: Server, token: str) -> tuple[list[str], list[str]]:
    """Passport numbers to check and foreigner ids to open (as immigration would find them)."""
    async with httpx.AsyncClient(timeout=60) as client:
        body = (await client.post(f"{server.url}/graphql", headers={
            "authorization": f"Bearer {token}", "sisada-purpose": PURPOSE}, json={
            "query": "{ foreigners(first: 200) { nodes { id passportNumber } } }"})).json()
    nodes = body["data"]["foreigners"]["nodes"]
    return [n["passportNumber"] for n in nodes], [n["id"] for n in nodes]


async def memory_sampler(servers: list[Server], deadline: float,
                         samples: list[tuple[float, list[int]]]) -> None:
    while time.monotonic() < deadline:
        samples.append((time.monotonic(), [rss_kib(s.process.pid) for s in servers]))
        await asyncio.sleep(SAMPLE_SECONDS)


async def run(args: argparse.Namespace, database_url: str, servers: list[Server]
              ) -> tuple[Outcomes, list[tuple[float, list[int]]], float]:
    rts = await seeded_rts(database_url)
    tokens = make_tokens(database_url, args.clients, rts[KECAMATAN[1]])
    passports, ids = await discover(servers[0], tokens["client:0"])
    world = World(servers, tokens, rts, passports, ids)
    warm = Outcomes()
    print(f"warm-up {args.warmup:.0f} s …", file=sys.stderr)
    warm_end = time.monotonic() + args.warmup
    await asyncio.gather(*(client_loop(i, world, warm_end, warm) for i in range(args.clients)))
    out = Outcomes()
    start = time.monotonic()
    deadline = start + args.seconds
    ready, connected = asyncio.Event(), []
    subs = [asyncio.create_task(subscriber(i, world, deadline, out, ready, connected))
            for i in range(args.subscribers)]
    await asyncio.sleep(1.0)  # the subscriptions in place before the load's events
    samples: list[tuple[float, list[int]]] = []
    print(f"load: {args.clients} clients, {args.subscribers} subscribers, "
          f"{args.seconds:.0f} s …", file=sys.stderr)
    await asyncio.gather(memory_sampler(servers, deadline, samples),
                         *(client_loop(i, world, deadline, out) for i in range(args.clients)),
                         *subs)
    if warm.errors:
        for name, errors in warm.errors.items():
            out.errors[f"(warm-up) {name}"] = errors
    return out, samples, start


def report(args: argparse.Namespace, out: Outcomes, samples: list[tuple[float, list[int]]],
           start: float) -> tuple[str, list[tuple[str, bool]]]:
    names = sorted(set(out.latency) | set(out.errors) | set(out.limited))
    lines = [f"{args.clients} clients, {args.subscribers} subscribers, {args.seconds:.0f} s "
             f"(after a {args.warmup:.0f} s warm-up), two replicas, PostgreSQL + Redis, "
             f"{args.foreigners} foreigners", "",
             "| operation | answered | per s | rate-limited | errors | p50 ms | p99 ms |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        done = out.latency.get(name, [])
        p50 = f"{percentile(done, 0.50) * 1000:.1f}" if done else "—"
        p99 = f"{percentile(done, 0.99) * 1000:.1f}" if done else "—"
        lines.append(f"| {name} | {len(done)} | {len(done) / args.seconds:.1f} | "
                     f"{out.limited.get(name, 0)} | {len(out.errors.get(name, []))} | "
                     f"{p50} | {p99} |")
    total = sum(len(v) for v in out.latency.values())
    lines.append(f"\nanswered {total} in {args.seconds:.0f} s ({total / args.seconds:.0f}/s)")
    errors = sum(len(v) for v in out.errors.values())
    for name, found in out.errors.items():
        lines.append(f"errors of {name}: {found[:3]}")
    bars = [(f"errors other than rate limits: {errors} (bar: 0)", errors == 0)]
    first = [rss for at, rss in samples if at - start < MINUTE]
    last = [rss for at, rss in samples if at - start >= args.seconds - MINUTE]
    lines.append("")
    for replica in range(len(samples[0][1]) if samples else 0):
        before = statistics.median(r[replica] for r in first) / 1024
        after = statistics.median(r[replica] for r in last) / 1024
        growth = after / before - 1
        lines.append(f"replica {replica + 1}: RSS median {before:.1f} MiB in the first minute, "
                     f"{after:.1f} MiB in the last ({growth * 100:+.1f} %)")
        bars.append((f"replica {replica + 1} memory growth first → last minute "
                     f"{growth * 100:+.1f} % (bar: ≤ {MEMORY_BAR * 100:.0f} %)",
                     growth <= MEMORY_BAR))
    return "\n".join(lines), bars


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=24, help="concurrent clients (24)")
    parser.add_argument("--seconds", type=float, default=240.0,
                        help="measured duration, at least 120 (240)")
    parser.add_argument("--warmup", type=float, default=20.0, help="warm-up seconds (20)")
    parser.add_argument("--subscribers", type=int, default=20,
                        help="WebSocket subscribers, half on each feed (20)")
    parser.add_argument("--foreigners", type=int, default=3000, help="seeded (3000)")
    args = parser.parse_args(argv)
    if args.seconds < 2 * MINUTE:
        parser.error("--seconds must be at least 120: the first and last minute are compared")
    if args.clients < 1:
        parser.error("--clients must be at least 1")
    import redis

    redis.Redis.from_url(REDIS_URL).ping()
    print(f"# Load test\n\nmachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"{time.strftime('%Y-%m-%d')}\n")
    with postgres_database(args.foreigners) as dbs:
        registry = start_registry(dbs.registry)
        try:
            with replicas(dbs.office, registry.url) as servers:
                out, samples, start = asyncio.run(run(args, dbs.office, servers))
        finally:
            stop_registry(registry)
    text, bars = report(args, out, samples, start)
    print(text, "\n")
    for label, ok in bars:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    failed = not all(ok for _, ok in bars)
    print("\nFAIL" if failed else "\nPASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
