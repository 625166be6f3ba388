"""`sisada trail verify | prune | export`: the access trail from the command line.

Each prints one line (export: the entries) and exits 0 on success, 1 when the trail is
not intact (verify, prune) and 2 when the database cannot be read or written. No traceback:
an operator reads the verdict, the cause is named by its type only.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import io
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from gateway.cli_errors import OFFICE_DATABASE, CliError, check_database, database_errors
from gateway.settings import Settings
from resolvers.db import Database, on_database
from resolvers.trail import entries_about_foreigner, prune, verify_chain

T = TypeVar("T")
# What an export shows of each entry: who read which fields, when, why. Never a value.
EXPORT_COLUMNS = ("seq", "at", "record_type", "record_id", "issuer", "subject", "role", "area",
                  "officer_id", "fields", "purpose", "request_id")


def register(sub: Any) -> None:
    """Add `trail` and its subcommands to the `sisada` parser's subparsers."""
    trail = sub.add_parser(
        "trail", help="the access trail: verify, prune, export",
        description="The access trail of identity reads in SISADA_DATABASE_URL (README, "
                    "'The access trail'). Exit 0: done; 1: the trail is broken or a prune "
                    "was refused; 2: the trail cannot be read.")
    trail_sub = trail.add_subparsers(dest="trail_command", required=True, metavar="COMMAND")
    trail_sub.add_parser(
        "verify", help="recompute the hash chain",
        description="Recompute the whole hash chain in one snapshot: exit 0 with the last "
                    "seq and hash when intact, else 1 naming the first altered, deleted or "
                    "inserted entry.").set_defaults(func=cmd_verify)
    prune_parser = trail_sub.add_parser(
        "prune", help="delete entries older than the retention (or --before)",
        description="Verify, then delete the oldest entries (and their record rows) before "
                    "the cut-off and append a chained prune entry. Refuses a broken trail "
                    "and a cut-off within SISADA_TRAIL_RETENTION_DAYS.")
    prune_parser.add_argument("--before", type=_cut_off,
                              help="ISO date or time, UTC unless it says otherwise "
                                   "(default: now minus the retention)")
    prune_parser.set_defaults(func=cmd_prune)
    export = trail_sub.add_parser(
        "export", help="who read a foreigner's identity, and why",
        description="Every read of a foreigner's identity and their stay permits', oldest "
                    "first, one row per record read (a data subject's request).")
    export.add_argument("--foreigner", type=int, required=True, help="the foreigner's id")
    export.add_argument("--format", choices=("json", "csv"), default="json",
                        help="output format (default: json)")
    export.set_defaults(func=cmd_export)


def cmd_verify(settings: Settings, _args: argparse.Namespace) -> int:
    outcome = _run(settings, verify_chain, "verify")
    if outcome is None:
        return 2
    if not outcome.ok:
        print(f"broken: entry {outcome.first_bad_seq}: {outcome.reason} "
              f"({outcome.entries} entries intact before it)")
        return 1
    head = f" (last seq {outcome.last_seq}, hash {outcome.last_hash})" if outcome.entries else ""
    print(f"intact: {outcome.entries} entries{head}")
    return 0


def cmd_prune(settings: Settings, args: argparse.Namespace) -> int:
    retained_from = dt.datetime.now(dt.UTC) - dt.timedelta(days=settings.trail_retention_days)
    before = args.before or retained_from
    if before > retained_from:
        # The retention is a promise to data subjects and auditors: nothing it covers is
        # deleted by a command line (changing the retention is a setting, and reviewed).
        print(f"refused: {before.isoformat()} is within the retention "
              f"(SISADA_TRAIL_RETENTION_DAYS={settings.trail_retention_days}: entries from "
              f"{retained_from.isoformat()} on are kept)")
        return 1
    # A broken chain is evidence: pruning must not delete it before someone has looked.
    outcome = _run(settings, verify_chain, "prune")
    if outcome is None:
        return 2
    if not outcome.ok:
        print(f"refused: the trail is broken at entry {outcome.first_bad_seq} "
              f"({outcome.reason}); run `sisada trail verify`")
        return 1
    pruned = _run(settings, lambda db: prune(db, before), "prune")
    if pruned is None:
        return 2
    print(f"pruned: {pruned.entries} entries ({pruned.records} record reads) before "
          f"{before.isoformat()}")
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    entries = _run(settings, lambda db: entries_about_foreigner(db, args.foreigner), "export")
    if entries is None:
        return 2
    rows = [{column: entry[column] for column in EXPORT_COLUMNS} for entry in entries]
    for row in rows:
        row["at"] = row["at"].isoformat().replace("+00:00", "Z")
    if args.format == "json":
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "fields": ",".join(row["fields"])})
    sys.stdout.write(out.getvalue())
    return 0


def _run(settings: Settings, action: Callable[[Database], Awaitable[T]], name: str) -> T | None:
    """`action` over the configured database; None (and one line on stderr) if it failed."""
    url = settings.database_url
    try:
        check_database(OFFICE_DATABASE, url, must_exist=True)
        with database_errors(OFFICE_DATABASE, url):
            return asyncio.run(on_database(url, action))
    except CliError as exc:  # what the database said, in words, once (gateway/cli_errors.py)
        print(f"trail {name}: failed ({exc.message})", file=sys.stderr)
        return None
    except Exception as exc:  # an operator needs the verdict, not the driver's traceback
        names = dict.fromkeys(type(error).__name__ for error in (exc, exc.__cause__ or exc))
        print(f"trail {name}: failed ({': '.join(names)})", file=sys.stderr)
        return None


def _cut_off(text: str) -> dt.datetime:
    try:
        value = (dt.datetime.fromisoformat(text) if "T" in text or " " in text
                 else dt.datetime.combine(dt.date.fromisoformat(text), dt.time()))
    except ValueError as exc:
        raise argparse.ArgumentTypeError("an ISO date (2021-01-31) or time") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
