"""The access trail's cost (issue 10), over real HTTP, in one run.

    python -m bench.trail [--backend sqlite|postgresql|both] [--foreigners 10000]
                          [--rounds 41]

Per backend: seeds (or reuses) the office database and the registry's, starts the stand-in
registry as its own process, and two real gateway processes over the same office database
and that same registry: one with the access trail on (the default), one with it off
(`SISADA_TRAIL_ENABLED=false`). Then:

- reads recorded per request: rows of `access_trail_record` counted before and after one
  1,000-row immigration list with names on each gateway (bar: 1,000 with the trail on;
  0 with it off is checked too), and the chained entries (`access_trail`) listing them;
- the 1,000-row immigration list with names, trail on vs trail off, interleaved in shuffled
  order over many rounds (bar: median ratio ≤ 1.15). In the same rounds, the list without
  identity fields (trail off) and the registry's `_entities` answer for the same 1,000
  people sent straight to it are timed, so the names' time splits into the registry's own
  and the gateway's, and the trail's share (on - off) is all the gateway's;
- the trail's write alone, in this process after the rounds (gateways stopped): 1,000
  reads like a request's, grouped into their entry and hashed (CPU only), and that entry
  appended by the gateway's own trail writer (`gateway/trail_thread.py`: chain lock, last
  link, hashing, the entry and its records, commit), medians of 11;
- `sisada trail verify` on the office database after all that (bar: exit 0).

Prints a table per backend and a PASS/FAIL line per bar; exits non-zero if a bar fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time

import httpx
from sqlalchemy import text

from bench.registry import (
    CASES,
    NAMES,
    PLAIN,
    WITH_NAMES,
    databases,
    gateway_request,
    registry_request,
    tokens,
)
from bench.run import DATA, ROOT, start, start_registry, stop, stop_registry
from resolvers.db import create_engine

TRAIL_BAR = 1.15
ON, OFF = "trail on", "trail off"
# (label, gateway, the registry bench's case: persona, document and rows)
TIMED = [
    ("1,000 rows, names, trail on", ON, CASES[2]),
    ("1,000 rows, names, trail off", OFF, CASES[2]),
    ("1,000 rows, no identity fields, trail off", OFF, CASES[3]),
    ("registry `_entities` alone, the 1,000 people", None, CASES[5]),
]
NAMES_ON, NAMES_OFF, PLAIN_OFF, ALONE = (label for label, _, _ in TIMED)
assert CASES[2].query == NAMES and CASES[3].query == PLAIN and CASES[2].name == WITH_NAMES


def trail_rows(database_url: str) -> tuple[int, int]:
    """(chained entries, record reads) in the trail."""
    async def count() -> tuple[int, int]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                entries = (await conn.execute(text("SELECT count(*) FROM access_trail"))
                           ).scalar_one()
                reads = (await conn.execute(text("SELECT count(*) FROM access_trail_record"))
                         ).scalar_one()
                return int(entries), int(reads)
        finally:
            await engine.dispose()

    return asyncio.run(count())


def trail_write(database_url: str, repeats: int = 11) -> tuple[float, float]:
    """Medians (ms): building and hashing the entry of a 1,000-read request, and appending
    it (what a request waits for with the trail on, less noting the reads)."""
    import datetime as dt

    from gateway.trail_thread import TrailThread
    from resolvers.trail.chain import GENESIS, TrailEntry, entry_hash, row_of

    def entries(n: int) -> list[TrailEntry]:
        # As gateway/access_trail.py builds them: the reads of one record type and field
        # set are one entry listing their records.
        return [TrailEntry(at=dt.datetime.now(dt.UTC), issuer="sisada-dev", subject="bench",
                           role="immigration_officer", area="31.74", office_code="31.74",
                           officer_id=1, record_type="Foreigner",
                           fields=("fullName", "passportNumber"), purpose="field_check",
                           request_id=f"bench-{n}", operation_name=None,
                           document_hash="0" * 64, client_address="127.0.0.1",
                           record_ids=tuple(sorted(str(i) for i in range(1, 1001))))]

    async def run() -> tuple[float, float]:
        writer = TrailThread(database_url, timeout=30)
        hashing, appending = [], []
        try:
            for n in range(repeats):
                started = time.perf_counter()
                batch = entries(n)
                for seq, entry in enumerate(batch, 1):
                    entry_hash(GENESIS, {**row_of(seq, entry), "prev_hash": GENESIS},
                               list(entry.record_ids))
                hashing.append(time.perf_counter() - started)
                started = time.perf_counter()
                await writer.entries(batch)
                appending.append(time.perf_counter() - started)
        finally:
            await writer.close()
        return statistics.median(hashing) * 1000, statistics.median(appending) * 1000

    return asyncio.run(run())


def trail_verify(database_url: str) -> tuple[int, str]:
    """`sisada trail verify` as an operator runs it, on the office database."""
    env = {**os.environ, "SISADA_DATABASE_URL": database_url, "SISADA_LOG_LEVEL": "warning"}
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "trail", "verify"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    return done.returncode, (done.stdout.strip() or done.stderr.strip()[-300:])


def run_backend(backend: str, args: argparse.Namespace) -> tuple[str, list[tuple[str, bool]]]:
    label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[backend]
    samples: dict[str, list[float]] = {name: [] for name, _, _ in TIMED}
    entries: dict[str, tuple[int, int]] = {}
    with databases(backend, args.foreigners) as dbs:
        record = DATA / f"trail-bench-{os.getpid()}.jsonl"
        registry = start_registry(dbs.registry, record)
        servers = {}
        try:
            servers[ON] = start("sisada", dbs.office, registry)
            servers[OFF] = start("sisada", dbs.office, registry,
                                 {"SISADA_TRAIL_ENABLED": "false"})
            toks = tokens(dbs.office)
            with httpx.Client(timeout=120) as client:
                entities_body = b""
                for side in (ON, OFF):
                    before = trail_rows(dbs.office)
                    registry.clear()
                    _, nodes = gateway_request(client, servers[side], CASES[2],
                                               toks["immigration"])
                    after = trail_rows(dbs.office)
                    entries[side] = (after[0] - before[0], after[1] - before[1])
                    if sum(1 for n in nodes if n.get("fullName") is not None) != 1000:
                        raise RuntimeError(f"{side}: the list did not carry 1,000 names")
                    received = registry.requests()
                    if side == ON and received:
                        import orjson

                        entities_body = orjson.dumps({"query": received[0]["query"],
                                                      "variables": received[0]["variables"]})
                if not entities_body:
                    raise RuntimeError("the registry recorded no request for the names")

                def once(side: str | None, case: object) -> float:
                    if side is None:
                        return registry_request(client, registry, entities_body)
                    return gateway_request(client, servers[side], case,  # type: ignore[arg-type]
                                           toks["immigration"])[0]

                for _ in range(2):  # warm-up
                    for _, side, case in TIMED:
                        once(side, case)
                rng = random.Random(10)
                for round_no in range(args.rounds):
                    order = list(TIMED)
                    rng.shuffle(order)
                    for name, side, case in order:
                        samples[name].append(once(side, case))
                    registry.clear()  # its record only grows; nothing reads it now
                    if (round_no + 1) % 10 == 0 or round_no + 1 == args.rounds:
                        print(f"  {label}: round {round_no + 1}/{args.rounds}", file=sys.stderr)
        finally:
            stop(list(servers.values()))
            stop_registry(registry)
            record.unlink(missing_ok=True)
        total = trail_rows(dbs.office)
        write = trail_write(dbs.office)
        verify_code, verify_text = trail_verify(dbs.office)
    return report(label, args, samples, entries, total, write, verify_code, verify_text)


def report(label: str, args: argparse.Namespace, samples: dict[str, list[float]],
           entries: dict[str, tuple[int, int]], total: tuple[int, int],
           write: tuple[float, float],
           verify_code: int, verify_text: str) -> tuple[str, list[tuple[str, bool]]]:
    def med(name: str) -> float:
        return statistics.median(samples[name]) * 1000

    def p95(name: str) -> float:
        values = sorted(samples[name])
        return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))] * 1000

    lines = [f"### {label}, {args.foreigners:,} foreigners, {args.rounds} interleaved rounds "
             "(two gateway processes, one office database, one registry)", "",
             "| request | median / p95 ms |", "|---|---|"]
    lines += [f"| {name} | {med(name):,.1f} / {p95(name):,.1f} |" for name, _, _ in TIMED]
    ratio = med(NAMES_ON) / med(NAMES_OFF)
    trail = med(NAMES_ON) - med(NAMES_OFF)
    alone = med(ALONE)
    lines += ["", f"Decomposition (medians): with the trail on the list with names takes "
              f"{med(NAMES_ON):,.1f} ms; the registry alone answers its `_entities` in "
              f"{alone:,.1f} ms, so {med(NAMES_ON) - alone:,.1f} ms are the gateway's, of "
              f"which {trail:,.1f} ms are the trail (on - off: the batch of 1,000 entries "
              f"hashed and written before the response leaves) and "
              f"{med(NAMES_OFF) - alone:,.1f} ms the rest of the gateway's work with names "
              f"(the list without identity fields: {med(PLAIN_OFF):,.1f} ms). "
              f"The trail held {total[1]:,} record reads in {total[0]:,} chained entries "
              f"after the rounds. The trail's write alone, in process on the same database: "
              f"building and hashing the entry of 1,000 reads {write[0]:.1f} ms, appending "
              f"it (lock, last link, hashing, two inserts, commit) {write[1]:.1f} ms; the "
              f"other {trail - write[1]:.1f} ms of the trail's share are the gateway noting "
              "the recorded fields and building the entry from the response."]
    bars = [
        (f"1,000-row immigration list with names, trail on / trail off: {ratio:.3f} "
         f"({med(NAMES_ON):,.1f} / {med(NAMES_OFF):,.1f} ms) (bar: ≤ {TRAIL_BAR})",
         ratio <= TRAIL_BAR),
        (f"reads recorded by one 1,000-row request with names: {entries[ON][1]:,} with the "
         f"trail on (in {entries[ON][0]} chained entry), {entries[OFF][1]} with it off "
         "(bar: 1,000 and 0)",
         entries[ON][1] == 1000 and entries[OFF] == (0, 0)),
        (f"`sisada trail verify` after the rounds: exit {verify_code} — {verify_text} "
         "(bar: exit 0)", verify_code == 0),
    ]
    lines.append("")
    lines += [f"- {'PASS' if ok else 'FAIL'} — {label}: {bar}" for bar, ok in bars]
    return "\n".join(lines), bars


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-trail", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--foreigners", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=41)
    args = parser.parse_args(argv)
    if args.foreigners < 1000:
        parser.error("--foreigners must be at least 1000 (the list is 1,000 rows)")
    print(f"# The access trail's cost\n\nmachine: {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}\n")
    failed = False
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        report_text, bars = run_backend(backend, args)
        print(report_text, "\n", flush=True)
        failed |= not all(ok for _, ok in bars)
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
