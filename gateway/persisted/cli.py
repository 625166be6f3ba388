"""`sisada operations add | list | remove | mode`: partners' registered operations (trusted
documents) and whether a partner may run anything else.

Every mistake is one line on stderr (gateway/cli_errors.py): exit 2 for the command line
(a missing file, a malformed client name), 1 for what the command cannot do (an invalid
document, an unknown client, a database out of reach or not migrated)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from gateway.cli_errors import OFFICE_DATABASE, USAGE, CliError, database_errors
from gateway.persisted.names import CLIENT_NAME_RULE, is_client_name
from gateway.persisted.report import (
    CheckedDocument,
    DocumentError,
    check_document,
    document_limits,
    readings,
)
from gateway.settings import Settings
from policies import Policy, PolicyError
from resolvers import operations as store
from resolvers.db import Database, on_database

T = TypeVar("T")
FORMATTER = argparse.RawDescriptionHelpFormatter
# The shortest hash prefix `remove` takes (a full SHA-256 is 64 hex digits).
MIN_HASH_PREFIX = 8


def client_name(text: str) -> str:
    """An argparse type: a client name as tokens carry it."""
    if not is_client_name(text):
        raise argparse.ArgumentTypeError(f"a client name is {CLIENT_NAME_RULE}")
    return text


def register(sub: Any, settings: Settings) -> None:
    """Add `operations` and its subcommands to the `sisada` parser's subparsers."""
    cache = settings.operations_cache_seconds
    operations = sub.add_parser(
        "operations", help="partners' registered operations (trusted documents) and "
                           "allow-list-only clients",
        formatter_class=FORMATTER,
        description=_wrapped("Partners' registered operations in SISADA_DATABASE_URL. A token's "
                    "`client` claim (`sisada token --client NAME`) names the partner; a "
                    "client in allow-list mode runs its registered operations only, by "
                    "hash (extensions.persistedQuery) or by sending the document verbatim. "
                    f"Running gateways see changes within SISADA_OPERATIONS_CACHE_SECONDS "
                    f"(now {cache:g} s).\nExit 0: done; 1: the document or the client is "
                    "refused, or the database cannot be used; 2: the command line is wrong."))
    ops = operations.add_subparsers(dest="operations_command", required=True,
                                    metavar="COMMAND")

    mode = ops.add_parser(
        "mode", help="create a client, or set whether it runs registered operations only",
        formatter_class=FORMATTER,
        description=_wrapped("Create the client if it is new, and set its mode: allow-list (only "
                    "its registered operations run; APQ registration refused) or open "
                    "(anything within the policy and the limits)."))
    mode.add_argument("--client", type=client_name, required=True, metavar="NAME",
                      help=f"the client ({CLIENT_NAME_RULE})")
    mode.add_argument("mode", choices=store.MODES, metavar="MODE",
                      help="allow-list or open")
    mode.set_defaults(func=cmd_mode)

    add = ops.add_parser(
        "add", help="check a .graphql document and register it for a client",
        formatter_class=FORMATTER,
        description=_wrapped("Check the document as the gateway would (size, syntax, validation "
                    "against the schema, depth, cost, aliases, tokens: the SISADA_MAX_* "
                    "limits) and register it under its SHA-256. Prints the hash, then per "
                    "role of the policy the root fields it would be refused (FORBIDDEN), "
                    "the fields that would be null (redacted) and those recorded in the "
                    "access trail. The client must exist (`sisada operations mode`)."))
    add.add_argument("--client", type=client_name, required=True, metavar="NAME",
                     help="the client the document is registered for")
    add.add_argument("file", type=Path, metavar="FILE.graphql",
                     help="the document (UTF-8); one or more operations and their fragments")
    add.set_defaults(func=cmd_add)

    listing = ops.add_parser(
        "list", help="clients, their modes and their registered operations",
        formatter_class=FORMATTER,
        description=_wrapped("Every client (or one) with its mode, then its operations: hash, "
                    "when added, operation names."))
    listing.add_argument("--client", type=client_name, metavar="NAME",
                         help="only this client (default: all)")
    listing.set_defaults(func=cmd_list)

    remove = ops.add_parser(
        "remove", help="unregister one operation of a client, or all of them",
        formatter_class=FORMATTER,
        description=_wrapped("Unregister an operation by its hash (or a unique prefix of at least "
                    f"{MIN_HASH_PREFIX} hex digits), or every operation of the client with "
                    "--all. The client keeps its mode."))
    remove.add_argument("--client", type=client_name, required=True, metavar="NAME",
                        help="the client")
    which = remove.add_mutually_exclusive_group(required=True)
    which.add_argument("hash", nargs="?", metavar="HASH", help="the operation's SHA-256")
    which.add_argument("--all", action="store_true", help="every operation of the client")
    remove.set_defaults(func=cmd_remove)


# -- the subcommands ----------------------------------------------------------------------------


def cmd_mode(settings: Settings, args: argparse.Namespace) -> int:
    created = _run(settings, lambda db: store.set_client_mode(db, args.client, args.mode))
    what = ("runs its registered operations only" if args.mode == store.ALLOW_LIST
            else "runs any operation the policy and the limits allow")
    print(f"client {args.client} {'created' if created else 'set'}: {args.mode} ({what}; "
          f"running gateways apply it within {settings.operations_cache_seconds:g} s)")
    return 0


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    document = _read_document(args.file)
    from schema.root import build_schema, schema_fields

    schema = build_schema(document_limits(settings), settings.max_batch_operations)
    try:
        checked = check_document(document, schema, settings)
    except DocumentError as exc:
        raise CliError(f"{args.file}: {exc.message}") from exc
    try:
        compiled = Policy(settings.policy_dir).compile(schema_fields(schema))
    except PolicyError as exc:
        raise CliError(f"policy: {str(exc).splitlines()[0]} (run `sisada policy check`)"
                       ) from exc

    async def register_it(db: Database) -> bool:
        await _require_client(db, args.client)
        if await store.operation_count(db, args.client) >= settings.operations_max_per_client:
            raise CliError(f"client {args.client} has {settings.operations_max_per_client} "
                           "operations already (SISADA_OPERATIONS_MAX_PER_CLIENT): remove "
                           "some first")
        return await store.add_operation(db, args.client, checked.sha256, checked.document,
                                         checked.operation_names)

    added = _run(settings, register_it)
    print(_add_report(args.client, checked, added, compiled))
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    async def listing(db: Database) -> tuple[list[tuple[str, str]],
                                             list[store.RegisteredOperation]]:
        if args.client is not None:
            await _require_client(db, args.client)
        return await store.registered_operations(db, args.client)

    clients, operations = _run(settings, listing)
    if not clients:
        print("no clients: create one with `sisada operations mode --client NAME "
              "allow-list|open`")
        return 0
    for name, mode in clients:
        own = [op for op in operations if op.client == name]
        print(f"{name} ({mode}): {len(own)} operation{'' if len(own) == 1 else 's'}")
        for op in own:
            # SQLite hands the UTC time back without its zone.
            added = op.added_at.replace(tzinfo=op.added_at.tzinfo or dt.UTC)
            added_text = added.isoformat(timespec="seconds").replace("+00:00", "Z")
            print(f"  {op.sha256}  {added_text}  {op.operation_names}")
    return 0


def cmd_remove(settings: Settings, args: argparse.Namespace) -> int:
    prefix = None if args.all else args.hash.lower()
    if prefix is not None and (len(prefix) < MIN_HASH_PREFIX
                               or any(c not in "0123456789abcdef" for c in prefix)):
        raise CliError(f"HASH is a SHA-256 in hex, or at least {MIN_HASH_PREFIX} of its "
                       "first digits", USAGE)

    async def remove(db: Database) -> int:
        await _require_client(db, args.client)
        sha256 = None
        if prefix is not None:
            _, operations = await store.registered_operations(db, args.client)
            matches = [op.sha256 for op in operations if op.sha256.startswith(prefix)]
            if not matches:
                raise CliError(f"client {args.client} has no operation {prefix}")
            if len(matches) > 1:
                raise CliError(f"{prefix} names {len(matches)} operations of client "
                               f"{args.client}: give more of the hash")
            sha256 = matches[0]
        return await store.remove_operations(db, args.client, sha256)

    removed = _run(settings, remove)
    print(f"removed {removed} operation{'' if removed == 1 else 's'} of client {args.client} "
          f"(running gateways apply it within {settings.operations_cache_seconds:g} s)")
    return 0


# -- helpers ------------------------------------------------------------------------------------


def _read_document(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CliError(f"there is no file {path}", USAGE) from exc
    except IsADirectoryError as exc:
        raise CliError(f"{path} is a directory, not a .graphql file", USAGE) from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text") from exc
    except OSError as exc:
        raise CliError(f"cannot read {path} ({exc.strerror or type(exc).__name__})") from exc


async def _require_client(db: Database, client: str) -> None:
    if await store.client_mode(db, client) is None:
        raise CliError(f"unknown client {client}: create it with `sisada operations mode "
                       f"--client {client} allow-list|open`")


def _run(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    """`action` over the office database, which must be migrated."""
    from gateway.cli import require_migrated  # the command line's own check, not a cycle

    require_migrated(settings)
    with database_errors(OFFICE_DATABASE, settings.database_url):
        return asyncio.run(on_database(settings.database_url, action))


def _add_report(client: str, checked: CheckedDocument, added: bool, compiled: Any) -> str:
    verb = "registered" if added else "already registered"
    lines = [f"{verb} {checked.sha256} for client {client} "
             f"(operations: {', '.join(checked.operation_names)})",
             "within the limits (size, tokens, depth, cost, aliases)",
             "per role of the policy: root fields refused (FORBIDDEN); fields null "
             "(redacted); fields recorded in the access trail:"]
    for reading in readings(compiled, checked.selected):
        lines.append(f"  {reading.role}: forbidden: {_names(reading.forbidden)}; "
                     f"redacted: {_names(reading.redacted)}; "
                     f"recorded: {_names(reading.recorded)}")
    return "\n".join(lines)


def _wrapped(text: str) -> str:
    """Help text wrapped for a terminal, paragraph by paragraph."""
    return "\n\n".join(textwrap.fill(p, 88) for p in text.split("\n"))


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "none"
