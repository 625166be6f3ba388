"""Live feeds at scale (issue 11's bars), over real WebSockets, in one run.

    python -m bench.subscriptions [--subscribers 2000] [--events 300] [--rate 20]
                                  [--reconnecting 100] [--client-processes 2]

Seeds a PostgreSQL office database, starts two real gateway processes (`sisada serve`)
sharing it, with Redis as the event bus (`SISADA_EVENT_BUS=redis`), and separate client
processes (this module with `--client`) that hold one graphql-transport-ws socket per
subscriber and note when each event arrives. The subscribers fall into 20 groups (one
rendering per event each): the supervisors' activity feed, report feed and live map
(`officerPositions`), seven field officers' own activities, and the police of the ten
kecamatan (seven on joint operations, three on reports). A group lives on one replica
(groups are dealt to the two so that each holds half the subscribers): the two CPU phases
then differ only in how many sockets each group has. Mutations (`recordActivity` by the
seven officers, `submitReport`) go at a steady rate, alternately through the two replicas.

Phases, in order:

1. 20 subscribers, one per group; warm-up events, then `--events` events: the gateways'
   CPU time (utime + stime from /proc) during them, per event;
2. the other subscribers join (2,000 in all); the gateways' RSS before and after, with no
   events flowing, per subscription added;
3. `--events` events with all subscribers: CPU per event again (bar: ≤ 2 times phase 1), and
   delivery latency: per event, from its commit (the outbox row's `created_at`, written in
   the mutation's transaction just before it commits, by the same machine's clock) to the
   last subscriber that received it (bar: p99 ≤ 250 ms);
4. `--events` events more while `--reconnecting` subscribers (spread over the groups)
   drop their socket a quarter of the way in and resubscribe with `after: <last eventId
   they received>` half-way (the latency to those that stayed is printed apart: a replay
   renders per subscriber, on the same event loop as the live stream).

Then every subscriber's received event ids are checked against the events the bench
caused, by the feeds' rules (which group sees which event): lost, duplicated, unexpected
(bar: 0 lost and 0 duplicated, for those that stayed and for those that reconnected).

Prints a table and a PASS/FAIL line per bar; exits non-zero if a bar fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

from bench.run import ROOT, Server, percentile, postgres_database, stop
from bench.serve import BENCH_SECRET, bench_settings
from gateway.auth import mint_dev_token
from resolvers.db import create_engine
from resolvers.seed import OFFICER_COUNT, SUPERVISOR_IDS

REDIS_URL = "redis://127.0.0.1:6379/0"
CITY = "31.74"
KECAMATAN = [f"{CITY}.{n:02d}" for n in range(1, 11)]
# Police of the first seven kecamatan follow joint operations, of the last three reports.
POLICE_ON_ACTIVITIES = KECAMATAN[:7]
FIELD_OFFICERS = [i for i in range(1, OFFICER_COUNT + 1) if i not in SUPERVISOR_IDS][:7]
SUPERVISOR = min(SUPERVISOR_IDS)

# Events that together reach every group, each an officer's joint operation in a kecamatan
# whose police follow them, and a report where police follow reports: once every
# subscriber has received these, every subscription is in place on its gateway.
BARRIER: list[tuple[str, str, int | None, bool]] = [
    *(("activity", k, o, True) for o, k in zip(FIELD_OFFICERS, POLICE_ON_ACTIVITIES,
                                                 strict=True)),
    *(("report", k, None, False) for k in KECAMATAN[7:]),
]

LATENCY_BAR_MS = 250.0
MEMORY_BAR_KIB = 50.0
CPU_BAR = 2.0
SETTLE_SECONDS = 3.0

ACTIVITIES_WITH_GEO = """subscription Activities($after: ID) {
  activityRecorded(after: $after) { eventId activity {
    id kind occurredAt areaCode latitude longitude jointOperation officer { id } } } }"""
OWN_ACTIVITIES = """subscription Own($after: ID) {
  activityRecorded(after: $after) { eventId activity {
    id kind occurredAt areaCode latitude longitude notes } } }"""
JOINT_OPERATIONS = """subscription Joint($after: ID) {
  activityRecorded(after: $after, jointOnly: true) { eventId activity {
    id kind occurredAt areaCode jointOperation officer { id } redactedFields } } }"""
REPORTS = """subscription Reports($after: ID) {
  reportUpdated(after: $after) { eventId report { id status text areaCode } } }"""
LIVE_MAP = """subscription Map($after: ID) {
  officerPositions(after: $after) { eventId officer { id }
    activity { id areaCode latitude longitude occurredAt } } }"""

RECORD = """mutation Record($input: RecordActivityInput!) { recordActivity(input: $input) {
  id } }"""
SUBMIT = """mutation Submit($input: SubmitReportInput!) { submitReport(input: $input) {
  receiptCode } }"""


# -- who subscribes to what -------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Subscribers that render alike: one role, jurisdiction, officer and document."""

    name: str
    role: str
    area: str
    officer_id: int | None
    query: str
    field: str  # the root field, to read eventId from a `next` payload
    share: float  # of all subscribers

    def receives(self, event: Fired) -> bool:
        """The feeds' rules for the events this bench causes (policies/feeds.polar,
        activities.polar, reports.polar): what the group must be sent, no more."""
        if event.kind == "report":
            return self.field == "reportUpdated" and (
                self.role == "immigration_supervisor" or event.area.startswith(self.area))
        if self.field == "reportUpdated":
            return False
        if self.role == "immigration_supervisor":
            return True
        if self.role == "immigration_officer":
            return event.officer_id == self.officer_id
        return event.joint and event.area.startswith(self.area)


def groups() -> list[Group]:
    found = [
        Group("supervisors: activities with geo", "immigration_supervisor", CITY, SUPERVISOR,
              ACTIVITIES_WITH_GEO, "activityRecorded", 0.10),
        Group("supervisors: reports", "immigration_supervisor", CITY, SUPERVISOR, REPORTS,
              "reportUpdated", 0.05),
        Group("supervisors: live map", "immigration_supervisor", CITY, SUPERVISOR, LIVE_MAP,
              "officerPositions", 0.05),
    ]
    found += [Group(f"officer {o}: own activities", "immigration_officer", CITY, o,
                    OWN_ACTIVITIES, "activityRecorded", 0.05) for o in FIELD_OFFICERS]
    found += [Group(f"police {k}: " + ("joint operations" if k in POLICE_ON_ACTIVITIES
                                       else "reports"), "police", k, None,
                    JOINT_OPERATIONS if k in POLICE_ON_ACTIVITIES else REPORTS,
                    "activityRecorded" if k in POLICE_ON_ACTIVITIES else "reportUpdated",
                    0.045) for k in KECAMATAN]
    assert abs(sum(g.share for g in found) - 1.0) < 1e-9 and len(found) == 20
    return found


@dataclass
class Subscriber:
    key: int
    group: int
    replica: int
    token: str
    reconnects: bool = False


def subscribers(total: int, reconnecting: int, all_groups: list[Group],
                database_url: str) -> list[Subscriber]:
    """`total` subscribers over the groups by their shares; the first of each group is
    the 20-subscriber phase's. Groups are dealt to the replicas largest first, each to the
    one holding fewer subscribers so far."""
    settings = bench_settings(database_url)
    sizes = [max(1, round(total * g.share)) for g in all_groups]
    sizes[0] += total - sum(sizes)
    replica_of: dict[int, int] = {}
    held = [0, 0]
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        replica_of[index] = 0 if held[0] <= held[1] else 1
        held[replica_of[index]] += sizes[index]
    found: list[Subscriber] = []
    for index, (group, size) in enumerate(zip(all_groups, sizes, strict=True)):
        for n in range(size):
            # One person per socket: their own token subject (sockets per principal).
            token = mint_dev_token(settings, group.role, area=group.area,
                                   officer_id=group.officer_id,
                                   subject=f"bench:{group.role}:{index}:{n}")
            found.append(Subscriber(len(found), index, replica_of[index], token))
    # The reconnecting ones: spread over the groups, never a group's first (phase 1's).
    later = [s for s in found if s.key not in first_of_groups(found)]
    step = max(1, len(later) // max(1, reconnecting))
    for s in later[::step][:reconnecting]:
        s.reconnects = True
    return found


def first_of_groups(found: list[Subscriber]) -> set[int]:
    seen: dict[int, int] = {}
    for s in found:
        seen.setdefault(s.group, s.key)
    return set(seen.values())


# -- the events --------------------------------------------------------------------------


@dataclass
class Fired:
    """One mutation the bench sent, and the event it caused."""

    seq: int
    kind: str  # "activity" | "report"
    area: str
    officer_id: int | None
    joint: bool
    replica: int
    phase: str
    sent: float = 0.0
    answered: float = 0.0
    record_id: int | None = None
    event_id: int | None = None
    committed: float | None = None
    error: str | None = None


class Load:
    """Mutations at a steady rate, alternately through the replicas."""

    def __init__(self, servers: list[Server], database_url: str, rt_of: dict[str, str]
                 ) -> None:
        settings = bench_settings(database_url)
        self.servers = servers
        self.rt_of = rt_of
        self.officer_tokens = {o: mint_dev_token(settings, "immigration_officer", area=CITY,
                                                 officer_id=o) for o in FIELD_OFFICERS}
        self.fired: list[Fired] = []
        self.client = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=64))

    def _next(self, phase: str, planned: tuple[str, str, int | None, bool] | None = None
              ) -> Fired:
        seq = len(self.fired)
        area = KECAMATAN[(seq * 3) % len(KECAMATAN)]
        if planned is not None:
            kind, area, officer_id, joint = planned
            event = Fired(seq, kind, area, officer_id, joint, seq % 2, phase)
        elif seq % 4 == 3:
            event = Fired(seq, "report", area, None, False, seq % 2, phase)
        else:
            officer = FIELD_OFFICERS[seq % len(FIELD_OFFICERS)]
            event = Fired(seq, "activity", area, officer, seq % 2 == 0, seq % 2, phase)
        self.fired.append(event)
        return event

    async def _send(self, event: Fired) -> None:
        server = self.servers[event.replica]
        rt = self.rt_of[event.area]
        if event.kind == "report":
            body = {"query": SUBMIT, "variables": {"input": {
                "category": "OVERSTAY", "text": f"bench report {event.seq}", "areaCode": rt}}}
            headers: dict[str, str] = {}
        else:
            assert event.officer_id is not None
            body = {"query": RECORD, "variables": {"input": {
                "kind": "JOINT_OPERATION" if event.joint else "DOCUMENT_CHECK",
                "jointOperation": event.joint, "areaCode": rt,
                "latitude": -6.2 - event.seq % 97 / 10_000,
                "longitude": 106.8 + event.seq % 89 / 10_000,
                "notes": f"bench activity {event.seq}"}}}
            headers = {"authorization": f"Bearer {self.officer_tokens[event.officer_id]}"}
        event.sent = time.time()
        try:
            response = await self.client.post(f"{server.url}/graphql", json=body,
                                              headers=headers)
            event.answered = time.time()
            data = response.json()
            if data.get("errors"):
                event.error = str(data["errors"][:1])
            elif event.kind == "activity":
                event.record_id = int(data["data"]["recordActivity"]["id"])
        except httpx.HTTPError as exc:
            event.error = repr(exc)

    async def run(self, count: int, rate: float, phase: str,
                  at: dict[int, Any] | None = None,
                  plan: list[tuple[str, str, int | None, bool]] | None = None) -> list[Fired]:
        """`count` events, the i-th at start + i/rate whatever the answers take; `at` maps
        an index to a coroutine function started at that point (drops, rejoins); `plan`
        gives the events' (kind, kecamatan, officer, joint) instead of the mix."""
        tasks: list[asyncio.Task[None]] = []
        extra: list[asyncio.Task[Any]] = []
        start = time.monotonic() + 0.05
        events = []
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if at and i in at:
                extra.append(asyncio.create_task(at[i]()))
            event = self._next(phase, plan[i] if plan else None)
            events.append(event)
            tasks.append(asyncio.create_task(self._send(event)))
        await asyncio.gather(*tasks, *extra)
        failed = [e for e in events if e.error]
        if failed:
            raise RuntimeError(f"{len(failed)} mutations failed, e.g. {failed[0].error}")
        return events

    async def close(self) -> None:
        await self.client.aclose()


# -- processes ----------------------------------------------------------------------------


def raise_open_files() -> int:
    """Sockets are files: 2,000 of them per side need more than a shell's default 1,024.
    Children (gateways, clients) inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65_536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


def start_gateway(database_url: str, channel: str, stderr: IO[bytes],
                  overrides: dict[str, str | None] | None = None) -> Server:
    """`sisada serve` as its own process, over the shared database, Redis as the bus;
    `overrides` change its environment (None removes a variable)."""
    from bench.run import free_port

    port = free_port()
    values: dict[str, str | None] = {
        "SISADA_DATABASE_URL": database_url,
        "SISADA_JWT_SECRET": BENCH_SECRET,
        "SISADA_DEV_KEY_FILE": "/nonexistent",
        "SISADA_EVENT_BUS": "redis",
        "SISADA_REDIS_URL": REDIS_URL,
        # A channel of this run's own: no other replica on the machine wakes these.
        "SISADA_EVENT_CHANNEL": channel,
        "SISADA_RATE_LIMITS_ENABLED": "false",
        "SISADA_LOG_LEVEL": "warning",
        "SISADA_REGISTRY_URL": None,
        **(overrides or {})}
    env = {**os.environ, **{k: v for k, v in values.items() if v is not None}}
    for name in [k for k, v in values.items() if v is None]:
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1", "--port",
         str(port)], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=stderr)
    server = Server("sisada serve", port, process)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            stderr.seek(0)
            raise RuntimeError(f"gateway exited: {stderr.read().decode()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        if time.monotonic() > deadline:
            stop([server])
            raise RuntimeError("gateway did not answer /healthz")
        time.sleep(0.1)


@contextlib.contextmanager
def gateways(database_url: str, overrides: dict[str, str | None] | None = None
             ) -> Iterator[list[Server]]:
    """Two replicas (start_gateway), their stderr's last lines printed when they stop."""
    channel = f"sisada_bench_{uuid.uuid4().hex[:8]}"
    logs = [tempfile.TemporaryFile() for _ in range(2)]  # noqa: SIM115 (closed below)
    servers: list[Server] = []
    try:
        for log in logs:
            servers.append(start_gateway(database_url, channel, log, overrides))
        yield servers
    finally:
        stop(servers)
        for log in logs:
            log.seek(0)
            tail = log.read().decode(errors="replace").strip()
            if tail:
                print(f"gateway stderr (last lines):\n{tail[-1500:]}", file=sys.stderr)
            log.close()


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        # The command may hold spaces: the fields start after its closing parenthesis.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class ClientProcess:
    """This module with `--client`: holds sockets, answers commands as JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> ClientProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.subscriptions", "--client", cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=2**30)
        return cls(process)

    async def ask(self, command: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(orjson.dumps(command) + b"\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"client process {self.process.pid} ended")
        return orjson.loads(line)

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(Exception):
                await self.ask({"cmd": "quit"}, timeout=10)
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 10)
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


# -- the client side (`--client`) --------------------------------------------------------


@dataclass
class Socket:
    spec: dict[str, Any]
    received: list[tuple[int, float]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # errors, unexpected closes
    unnumbered: int = 0
    extensions: str | None = None  # what the handshake negotiated (permessage-deflate)
    task: asyncio.Task[None] | None = None
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    dropping: bool = False


async def _hold(sock: Socket, after: int | None) -> None:
    """One socket, one subscription; every `next` noted with its arrival time."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    spec = sock.spec
    variables = {} if after is None else {"after": str(after)}
    field_name = spec["field"]
    try:
        async with connect(spec["url"], subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                           open_timeout=60, ping_interval=None, max_size=2**24,
                           close_timeout=2,
                           compression="deflate" if spec["deflate"] else None) as ws:
            assert ws.response is not None
            sock.extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            await ws.send(orjson.dumps({"type": "connection_init", "payload": {
                "authorization": f"Bearer {spec['token']}"}}).decode())
            ack = orjson.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                sock.other.append(f"no ack: {ack}")
                sock.subscribed.set()
                return
            await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": spec["query"], "variables": variables}}).decode())
            sock.subscribed.set()
            async for text in ws:
                now = time.time()
                message = orjson.loads(text)
                kind = message.get("type")
                if kind == "next":
                    data = message["payload"].get("data") or {}
                    event = data.get(field_name) or {}
                    event_id = event.get("eventId")
                    if event_id is None:
                        # The live map's start: a latest position no event announced
                        # (seeded before the outbox), so it has no id to resume from.
                        sock.unnumbered += 1
                    else:
                        sock.received.append((int(event_id), now))
                elif kind == "ping":
                    await ws.send('{"type":"pong"}')
                elif kind in ("error", "complete"):
                    sock.other.append(str(text)[:300])
    except ConnectionClosed as closed:
        if not sock.dropping:
            sock.other.append(f"closed {closed.rcvd.code if closed.rcvd else None}")
    except (OSError, TimeoutError) as exc:
        sock.other.append(f"failed: {exc!r}")
    finally:
        sock.subscribed.set()


async def _open(sockets: dict[int, Socket], specs: list[dict[str, Any]]) -> list[int]:
    """Opened 50 at a time: a thundering herd of 1,000 handshakes would only measure the
    kernel's accept queue."""
    opened: list[int] = []
    gate = asyncio.Semaphore(50)

    async def open_one(spec: dict[str, Any]) -> None:
        async with gate:
            sock = Socket(spec)
            sockets[spec["key"]] = sock
            sock.task = asyncio.create_task(_hold(sock, None))
            await sock.subscribed.wait()
            opened.append(spec["key"])

    await asyncio.gather(*(open_one(spec) for spec in specs))
    return opened


async def client_main() -> None:
    raise_open_files()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**30)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    sockets: dict[int, Socket] = {}

    def reply(value: dict[str, Any]) -> None:
        sys.stdout.buffer.write(orjson.dumps(value) + b"\n")
        sys.stdout.buffer.flush()

    while True:
        line = await reader.readline()
        if not line:
            break
        command = orjson.loads(line)
        cmd = command["cmd"]
        if cmd == "open":
            opened = await _open(sockets, command["subscribers"])
            reply({"opened": len(opened),
                   "failed": {k: sockets[k].other for k in opened if sockets[k].other}})
        elif cmd == "drop":
            for key in command["keys"]:
                sock = sockets[key]
                sock.dropping = True
                if sock.task is not None:
                    sock.task.cancel()
            await asyncio.gather(*(sockets[k].task for k in command["keys"]),  # type: ignore[misc]
                                 return_exceptions=True)
            reply({"dropped": len(command["keys"])})
        elif cmd == "rejoin":
            for key in command["keys"]:
                sock = sockets[key]
                sock.dropping = False
                sock.subscribed = asyncio.Event()
                last = max((e for e, _t in sock.received), default=command["start"])
                sock.task = asyncio.create_task(_hold(sock, last))
            await asyncio.gather(*(sockets[k].subscribed.wait() for k in command["keys"]))
            reply({"rejoined": len(command["keys"])})
        elif cmd == "missing":
            missing = 0
            for key, expected in command["expect"].items():
                have = {e for e, _t in sockets[int(key)].received}
                missing += sum(1 for e in expected if e not in have)
            reply({"missing": missing})
        elif cmd == "count":
            reply({"received": sum(len(s.received) for s in sockets.values())})
        elif cmd == "report":
            path = Path(command["path"])
            path.write_bytes(orjson.dumps({str(k): {"received": s.received, "other": s.other,
                                                     "unnumbered": s.unnumbered,
                                                     "extensions": s.extensions}
                                           for k, s in sockets.items()}))
            reply({"written": str(path), "cpu": time.process_time()})
        elif cmd == "quit":
            for sock in sockets.values():
                if sock.task is not None:
                    sock.dropping = True
                    sock.task.cancel()
            await asyncio.gather(*(s.task for s in sockets.values() if s.task),
                                 return_exceptions=True)
            reply({"quit": True})
            break


# -- the run ------------------------------------------------------------------------------


@dataclass
class Measured:
    cpu_small: float = 0.0  # gateway CPU seconds per event, phase 1
    cpu_large: float = 0.0
    rss_before: int = 0  # KiB, both gateways
    rss_after: int = 0
    added: int = 0
    per_group_replica: dict[int, int] = field(default_factory=dict)
    client_cpu: float = 0.0
    client_seconds: float = 0.0
    join_seconds: float = 0.0
    drain_seconds: float = 0.0


async def seeded_rts(database_url: str) -> dict[str, str]:
    """One RT with residents per kecamatan: where the bench's activities and reports are."""
    from sqlalchemy import func, select

    from resolvers.models import Residence

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(Residence.kecamatan_code, func.min(Residence.rt_code))
                .where(Residence.valid_to.is_(None)).group_by(Residence.kecamatan_code))
            found = {k: rt for k, rt in rows if k in KECAMATAN}
    finally:
        await engine.dispose()
    missing = set(KECAMATAN) - set(found)
    if missing:
        raise RuntimeError(f"no residents seeded in {sorted(missing)}: seed more foreigners")
    return found


async def outbox_events(database_url: str, fired: list[Fired]) -> None:
    """Each mutation's event id and commit time, from the outbox (reports are found by
    their text: submitReport answers a receipt code, not an id)."""
    from sqlalchemy import text

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT e.id, e.topic, e.record_id, e.created_at, r.text FROM event_outbox e "
                "LEFT JOIN report r ON e.topic = 'report' AND r.id = e.record_id "
                "ORDER BY e.id"))).all()
    finally:
        await engine.dispose()
    by_activity = {int(r[2]): r for r in rows if r[1] == "activity"}
    by_report = {r[4]: r for r in rows if r[1] == "report" and r[4]}
    for event in fired:
        row = (by_activity.get(event.record_id) if event.kind == "activity"  # type: ignore[arg-type]
               else by_report.get(f"bench report {event.seq}"))
        if row is None:
            raise RuntimeError(f"no outbox event for mutation {event.seq} ({event.kind})")
        event.event_id = int(row[0])
        created: dt.datetime = row[3]
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        event.committed = created.timestamp()


async def drained(clients: list[ClientProcess], quiet: float = 2.0, limit: float = 120.0
                  ) -> float:
    """Seconds until the clients received nothing more for `quiet` seconds."""
    started = time.monotonic()
    last, still = -1, time.monotonic()
    while time.monotonic() - started < limit:
        count = sum([(await c.ask({"cmd": "count"}))["received"] for c in clients])
        if count != last:
            last, still = count, time.monotonic()
        elif time.monotonic() - still >= quiet:
            break
        await asyncio.sleep(0.25)
    return time.monotonic() - started


async def run(args: argparse.Namespace, database_url: str, servers: list[Server]
              ) -> tuple[str, list[tuple[str, bool]]]:
    all_groups = groups()
    subs = subscribers(args.subscribers, args.reconnecting, all_groups, database_url)
    small = first_of_groups(subs)
    rts = await seeded_rts(database_url)
    pids = [s.process.pid for s in servers]
    clients = [await ClientProcess.start() for _ in range(args.client_processes)]
    load = Load(servers, database_url, rts)
    measured = Measured()
    started_at: dict[int, int] = {}  # subscriber -> the first bench event it must receive
    dropped_at: dict[int, float] = {}
    try:
        def spec(s: Subscriber) -> dict[str, Any]:
            group = all_groups[s.group]
            return {"key": s.key, "url": servers[s.replica].url.replace("http", "ws", 1)
                    + "/graphql", "token": s.token, "query": group.query,
                    "field": group.field, "deflate": args.compression == "deflate"}

        def client_of(s: Subscriber) -> ClientProcess:
            return clients[s.key % len(clients)]

        async def open_all(keys: set[int]) -> None:
            measured.join_seconds = time.monotonic()
            answers = await asyncio.gather(*(
                c.ask({"cmd": "open", "subscribers": [spec(s) for s in subs
                                                      if s.key in keys and client_of(s) is c]})
                for c in clients))
            failed = {k: v for a in answers for k, v in a["failed"].items()}
            if failed:
                raise RuntimeError(f"{len(failed)} subscribers failed to open, e.g. "
                                   f"{next(iter(failed.items()))}")

        async def in_place(keys: set[int]) -> int:
            """Barrier rounds until every subscriber in `keys` received the round's events
            meant for it; the index of the first event each must then receive."""
            for _attempt in range(10):
                mark = len(load.fired)
                events = await load.run(len(BARRIER), args.rate, "barrier", plan=BARRIER)
                await outbox_events(database_url, events)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    missing = 0
                    for c in clients:
                        expect = {str(s.key): [e.event_id for e in events
                                               if all_groups[s.group].receives(e)]
                                  for s in subs if s.key in keys and client_of(s) is c}
                        missing += (await c.ask({"cmd": "missing", "expect": expect}))[
                            "missing"]
                    if not missing:
                        return mark
                    await asyncio.sleep(0.5)
                print(f"  {missing} barrier events not yet received: another round",
                      file=sys.stderr)
            raise RuntimeError("subscribers never all in place")

        def cpu() -> float:
            return sum(cpu_seconds(pid) for pid in pids)

        async def phase(count: int, name: str, at: dict[int, Any] | None = None
                        ) -> tuple[float, list[Fired]]:
            before = cpu()
            events = await load.run(count, args.rate, name, at)
            await asyncio.sleep(SETTLE_SECONDS)  # the last events reach everyone
            return (cpu() - before) / count, events

        # Phase 1: one subscriber per group.
        print(f"phase 1: {len(small)} subscribers, one per group", file=sys.stderr)
        await open_all(small)
        await load.run(args.warmup, args.rate, "warm-up")
        mark = await in_place(small)
        for key in small:
            started_at[key] = mark
        await asyncio.sleep(SETTLE_SECONDS)
        measured.cpu_small, _ = await phase(args.events, "1: 20 subscribers")

        # Phase 2: everyone else joins; memory before and after, no events flowing.
        rest = {s.key for s in subs} - small
        print(f"phase 2: {len(rest)} subscribers join", file=sys.stderr)
        measured.rss_before = sum(rss_kib(pid) for pid in pids)
        await open_all(rest)
        mark = await in_place(rest)
        measured.join_seconds = time.monotonic() - measured.join_seconds
        await asyncio.sleep(SETTLE_SECONDS)
        measured.rss_after = sum(rss_kib(pid) for pid in pids)
        measured.added = len(rest)
        for key in rest:
            started_at[key] = mark

        # Phase 3: all subscribers, steady rate: CPU and latency.
        print(f"phase 3: {args.events} events to {len(subs)} subscribers", file=sys.stderr)
        measured.cpu_large, _ = await phase(args.events, "3: all subscribers")

        # Phase 4: some drop and come back with `after`.
        movers = [s for s in subs if s.reconnects]
        print(f"phase 4: {len(movers)} subscribers drop and resubscribe with after",
              file=sys.stderr)

        async def drop() -> None:
            for c in clients:
                keys = [s.key for s in movers if client_of(s) is c]
                await c.ask({"cmd": "drop", "keys": keys})
            for s in movers:
                dropped_at[s.key] = time.time()

        async def rejoin() -> None:
            for c in clients:
                keys = [s.key for s in movers if client_of(s) is c]
                await c.ask({"cmd": "rejoin", "keys": keys, "start": 0})

        await phase(args.events, "4: reconnecting", {args.events // 4: drop,
                                                     args.events // 2: rejoin})
        # Whatever is still on its way arrives before the count: late is not lost.
        measured.drain_seconds = await drained(clients)
        await outbox_events(database_url, load.fired)

        received: dict[int, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for n, c in enumerate(clients):
                answer = await c.ask({"cmd": "report", "path": f"{tmp}/client-{n}.json"})
                measured.client_cpu += answer["cpu"]
                received.update({int(k): v for k, v in
                                 orjson.loads(Path(answer["written"]).read_bytes()).items()})
    finally:
        for c in clients:
            await c.close()
        await load.close()
    if args.dump:
        Path(args.dump).write_bytes(orjson.dumps({
            "fired": [e.__dict__ for e in load.fired],
            "subscribers": [{"key": s.key, "group": all_groups[s.group].name,
                             "replica": s.replica, "reconnects": s.reconnects,
                             "start": started_at.get(s.key)} for s in subs],
            "received": {str(k): v for k, v in received.items()}}))
    return report(args, all_groups, subs, load.fired, started_at, received, measured)


def report(args: argparse.Namespace, all_groups: list[Group], subs: list[Subscriber],
           fired: list[Fired], started_at: dict[int, int], received: dict[int, dict[str, Any]],
           measured: Measured) -> tuple[str, list[tuple[str, bool]]]:
    by_event_id = {e.event_id: e for e in fired}
    bench_ids = set(by_event_id)
    lost = {"stayed": 0, "reconnected": 0}
    duplicated = {"stayed": 0, "reconnected": 0}
    unexpected = 0
    out_of_order = 0
    problems: list[str] = []
    arrivals: dict[int, list[float]] = {}
    for s in subs:
        kind = "reconnected" if s.reconnects else "stayed"
        got = received.get(s.key, {"received": [], "other": ["never opened"]})
        problems += [f"subscriber {s.key}: {o}" for o in got["other"]]
        group = all_groups[s.group]
        start = started_at[s.key]
        expected = {e.event_id for e in fired[start:] if group.receives(e)}
        # The live map's start (each officer's latest position) comes before the window.
        ids = [(eid, t) for eid, t in got["received"] if eid in bench_ids
               and by_event_id[eid].seq >= start]
        seen = [eid for eid, _ in ids]
        duplicated[kind] += len(seen) - len(set(seen))
        lost[kind] += len(expected - set(seen))
        unexpected += len(set(seen) - expected)
        out_of_order += sum(1 for a, b in itertools.pairwise(seen) if b <= a)
        if not s.reconnects:
            for eid, t in ids:
                arrivals.setdefault(eid, []).append(t)

    def latencies(phase_prefix: str) -> list[float]:
        return [(max(arrivals[e.event_id]) - e.committed) * 1000  # type: ignore[operator]
                for e in fired if e.phase.startswith(phase_prefix)
                and e.event_id in arrivals]

    def pct(values: list[float], q: float) -> float:
        return percentile(values, q, empty=0.0)

    large = latencies("3")
    churn = latencies("4")
    small_lat = latencies("1")
    per_sub_kib = (measured.rss_after - measured.rss_before) / max(1, measured.added)
    ratio = measured.cpu_large / measured.cpu_small if measured.cpu_small else float("inf")
    sizes = [sum(1 for s in subs if s.group == i) for i in range(len(all_groups))]
    fanout = statistics.mean(sum(sizes[i] for i, g in enumerate(all_groups) if g.receives(e))
                             for e in fired if e.phase.startswith("3"))
    lines = [f"### PostgreSQL + Redis, {len(subs):,} subscribers in {len(all_groups)} groups, "
             f"2 gateway processes, {args.client_processes} client processes", "",
             "| figure | value |", "|---|---|",
             f"| subscribers (per replica) | {len(subs):,} "
             f"({sum(1 for s in subs if s.replica == 0):,} / "
             f"{sum(1 for s in subs if s.replica == 1):,}) |",
             f"| events sent | {len(fired):,} at {args.rate:g}/s ({args.warmup} warm-up, "
             f"then {args.events} per phase) |",
             f"| sockets per event, phase 3 (mean) | {fanout:,.0f} |",
             f"| delivery to the last subscriber, 20 subscribers: p50 / p99 / max ms | "
             f"{pct(small_lat, .5):,.1f} / {pct(small_lat, .99):,.1f} / "
             f"{max(small_lat, default=0):,.1f} |",
             f"| delivery to the last subscriber, {len(subs):,}: p50 / p99 / max ms | "
             f"{pct(large, .5):,.1f} / {pct(large, .99):,.1f} / {max(large, default=0):,.1f} |",
             f"| the same while {sum(s.reconnects for s in subs)} drop and resubscribe with "
             f"after (phase 4; to those that stayed) | {pct(churn, .5):,.1f} / "
             f"{pct(churn, .99):,.1f} / {max(churn, default=0):,.1f} |",
             f"| gateways' RSS before / after {measured.added:,} subscriptions joined | "
             f"{measured.rss_before / 1024:,.1f} / {measured.rss_after / 1024:,.1f} MiB |",
             f"| memory per idle subscription | {per_sub_kib:,.1f} KiB |",
             f"| {measured.added:,} subscribers opened and in place (a barrier of events "
             f"reached each) in | "
             f"{measured.join_seconds:,.1f} s |",
             f"| gateways' CPU per event, 20 subscribers | {measured.cpu_small * 1000:,.2f} ms |",
             f"| gateways' CPU per event, {len(subs):,} subscribers | "
             f"{measured.cpu_large * 1000:,.2f} ms |",
             f"| lost / duplicated, stayed connected | {lost['stayed']} / "
             f"{duplicated['stayed']} |",
             f"| lost / duplicated, reconnected with after ({sum(s.reconnects for s in subs)}"
             f" subscribers) | {lost['reconnected']} / {duplicated['reconnected']} |",
             f"| unexpected events / out of order / socket problems | {unexpected} / "
             f"{out_of_order} / {len(problems)} |",
             f"| client processes' CPU (all phases) | {measured.client_cpu:,.1f} s |",
             f"| after the last event, deliveries went on for | "
             f"{measured.drain_seconds:,.1f} s |",
             f"| live map's starting positions without an event id (seeded) | "
             f"{sum(r.get('unnumbered', 0) for r in received.values()):,} |",
             f"| WebSocket extensions negotiated | "
             f"{', '.join(sorted({str(r.get('extensions')) for r in received.values()}))} |"]
    if problems:
        lines += ["", "Socket problems (first 5): " + "; ".join(problems[:5])]
    bars = [
        (f"p99 delivery latency, commit to the last of {len(subs):,} subscribers at "
         f"{args.rate:g} events/s (phase 3): {pct(large, .99):,.1f} ms "
         f"(bar: ≤ {LATENCY_BAR_MS:g} ms)",
         bool(large) and pct(large, .99) <= LATENCY_BAR_MS),
        (f"memory per idle subscription: {per_sub_kib:,.1f} KiB (bar: ≤ {MEMORY_BAR_KIB:g} "
         "KiB)", per_sub_kib <= MEMORY_BAR_KIB),
        (f"lost / duplicated events: {lost['stayed']} / {duplicated['stayed']} for those "
         f"that stayed, {lost['reconnected']} / {duplicated['reconnected']} for those that "
         "reconnected with after (bar: 0 / 0)",
         not any(lost.values()) and not any(duplicated.values())),
        (f"CPU per event, {len(subs):,} / 20 subscribers in the same 20 groups: {ratio:.2f} "
         f"({measured.cpu_large * 1000:,.2f} / {measured.cpu_small * 1000:,.2f} ms) "
         f"(bar: ≤ {CPU_BAR:g})", ratio <= CPU_BAR),
    ]
    lines.append("")
    lines += [f"- {'PASS' if ok else 'FAIL'} — {bar}" for bar, ok in bars]
    if unexpected or problems:
        lines.append(f"- note: {unexpected} unexpected events and {len(problems)} socket "
                     "problems (see above)")
    return "\n".join(lines), bars


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-subscriptions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--events", type=int, default=300, help="events per measured phase")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--reconnecting", type=int, default=100)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--foreigners", type=int, default=2000)
    parser.add_argument("--dump", help="write every event sent and received to this JSON "
                                       "file (for finding out why a bar failed)")
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate",
                        help="what the clients offer: permessage-deflate (as browsers and "
                             "the graphql-ws/ws client do) or nothing")
    args = parser.parse_args(argv)
    if args.client:
        asyncio.run(client_main())
        return 0
    if args.subscribers < 40 or args.events < 8:
        parser.error("at least 40 subscribers and 8 events per phase")
    files = raise_open_files()
    import redis

    redis.Redis.from_url(REDIS_URL).ping()
    print(f"# Live feeds at scale\n\nmachine: {os.cpu_count()} cores, Python "
          f"{sys.version.split()[0]}, open files {files}, {time.strftime('%Y-%m-%d')}\n")
    with postgres_database(args.foreigners) as dbs, gateways(dbs.office) as servers:
        text, bars = asyncio.run(run(args, dbs.office, servers))
    print(text, "\n", flush=True)
    failed = not all(ok for _, ok in bars)
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
