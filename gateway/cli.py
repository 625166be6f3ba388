"""The `sisada` command: migrate, seed, serve, token, demo, the stand-in registry, the
policy and the access trail.

Exit codes: 0 done; 1 the command could not do its work (a database out of reach or not
migrated, data already there, a missing key); 2 the command line or a SISADA_* setting is
wrong. Every failure is one line on stderr, never a traceback (gateway/cli_errors.py).
`sisada trail` keeps its own: 1 the trail is broken or a prune refused, 2 unreadable."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import trail_cli
from gateway.auth import (
    AuthConfigError,
    check_key_settings,
    default_dev_token_ttl,
    dev_secret,
    mint_dev_token,
)
from gateway.cli_errors import (
    FAILURE,
    OFFICE_DATABASE,
    REGISTRY_DATABASE,
    USAGE,
    CliError,
    check_database,
    check_http_url,
    database_errors,
    shown,
)
from gateway.demo_tokens import DEMO_KECAMATAN, demo_area, demo_officer
from gateway.logging import configure_logging, name_routes, uvicorn_log_config
from gateway.persisted import cli as operations_cli
from gateway.production import ProductionSettingsError
from gateway.settings import Settings, get_settings
from policies import Policy, PolicyError
from policies.area_codes import is_area_code, level_of
from resolvers import migrate
from resolvers.db import Database, create_engine, on_database
from resolvers.models import Area, Foreigner
from resolvers.officers import officer_kind
from resolvers.seed import (
    DEFAULT_FOREIGNERS,
    DEFAULT_SEED,
    SeedError,
    SeedSummary,
    clear_seeded_data,
    policy_submitters,
    seed_database,
)

# The whole seed is built in memory before it is written (~5 KB a foreigner with its
# permits, residences, reports and activities): 100,000 take about half a gigabyte.
MAX_SEED_FOREIGNERS = 100_000
REGISTRY_URL = "SISADA_REGISTRY_URL"


# -- migrate -----------------------------------------------------------------------------------


def migrate_both(settings: Settings) -> None:
    """Migrate the office database and the stand-in registry's. Identity an office database
    still holds from before the split is copied into the registry first, then dropped."""
    from examples.registry import store

    office, registry = settings.database_url, settings.registry_database_url
    check_database(OFFICE_DATABASE, office, must_exist=False)
    check_database(REGISTRY_DATABASE, registry, must_exist=False)
    with database_errors(REGISTRY_DATABASE, registry):
        asyncio.run(store.migrate_registry(registry))
    with database_errors(OFFICE_DATABASE, office):
        _refuse_unknown_revision(settings)
        persons, permits = migrate.identity_rows(office)
    if persons:
        with database_errors(REGISTRY_DATABASE, registry):
            asyncio.run(store.write_identities(registry, persons, permits))
        print(f"moved the identity of {len(persons)} foreigners to the registry",
              file=sys.stderr)
    with database_errors(OFFICE_DATABASE, office):
        migrate.upgrade(office, identity_moved=bool(persons))
        if persons:
            migrate.scrub_dropped_identity(office)


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    migrate_both(settings)
    print("databases migrated (office and registry)", file=sys.stderr)
    return 0


def require_migrated(settings: Settings, hint: str = "run `sisada migrate` first") -> None:
    """The office database exists, is reachable and is at this version's schema."""
    url = settings.database_url
    check_database(OFFICE_DATABASE, url, must_exist=True, hint=hint)
    with database_errors(OFFICE_DATABASE, url):
        current = asyncio.run(migrate.current_revision(url))
    head = migrate.head_revision()
    if current == head:
        return
    where = f"{OFFICE_DATABASE}={shown_url(url)}"
    if current is None:
        raise CliError(f"the database is not migrated: {hint} ({where})")
    _refuse_unknown_revision(settings, current)
    raise CliError(f"the database is at revision {current}, this version needs {head}: "
                   f"{hint} ({where})")


def _refuse_unknown_revision(settings: Settings, current: str | None = None) -> None:
    # A database a newer version migrated: this one would misread it, and cannot go back.
    url = settings.database_url
    if current is None:
        current = asyncio.run(migrate.current_revision(url))
    if current is not None and current not in migrate.known_revisions():
        raise CliError(f"the database is at revision {current}, which only a newer version "
                       f"of sisada knows ({OFFICE_DATABASE}={shown_url(url)})")


def shown_url(url: str) -> str:
    return shown(make_url(url))


# -- seed --------------------------------------------------------------------------------------


class SeedProgress:
    """How far the seed is, on stderr: a percentage rewritten in place on a terminal; in a
    log (not a terminal) only the first and the last line, so the log stays readable."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.on_terminal = sys.stderr.isatty()
        self.shown = -1

    def start(self) -> None:
        end = "" if self.on_terminal else "\n"
        print(f"{self.label} …", end=end, file=sys.stderr, flush=True)

    def __call__(self, done: int, total: int) -> None:
        percent = 100 if total == 0 else done * 100 // total
        if self.on_terminal and percent != self.shown:
            print(f"\r{self.label}: {percent:3d} %", end="", file=sys.stderr, flush=True)
        self.shown = percent

    def finish(self) -> None:
        if self.on_terminal:
            print(file=sys.stderr, flush=True)


def seed_both(settings: Settings, foreigners: int, seed: int, *, reset: bool,
              label: str) -> SeedSummary:
    """Fill both databases with the demo data (after clearing them when `reset`)."""
    from examples.registry import store

    office, registry = settings.database_url, settings.registry_database_url
    require_migrated(settings)
    check_database(REGISTRY_DATABASE, registry, must_exist=False)
    # The demo reports are owned by the principals `sisada token` mints: the policy names
    # their roles, the settings the issuer.
    submitters = policy_submitters(load_policy(settings))
    with database_errors(REGISTRY_DATABASE, registry):
        asyncio.run(store.migrate_registry(registry))
        registry_empty = asyncio.run(store.registry_is_empty(registry))
    with database_errors(OFFICE_DATABASE, office):
        seeded = asyncio.run(_foreigner_count(office))
    if seeded is not None or not registry_empty:
        if not reset:
            what = (f"the database is already seeded ({seeded} foreigners)" if seeded is not None
                    else "the registry database already holds people (the office's is empty)")
            raise CliError(f"{what}: `sisada seed --reset` deletes the demo data of both "
                           "databases and seeds again")
        with database_errors(OFFICE_DATABASE, office):
            cleared = asyncio.run(_clear(office))
        with database_errors(REGISTRY_DATABASE, registry):
            asyncio.run(store.delete_identities(registry))
        print(f"{label}: cleared {cleared} foreigners from the office and registry databases "
              "(the access trail is kept: it is append-only)", file=sys.stderr)

    async def write_identity(persons: list[dict[str, Any]],
                             permits: list[dict[str, Any]]) -> None:
        # Inside the office's transaction: a registry that fails rolls the office back, and
        # the failure is named after the registry's setting, not the office's.
        with database_errors(REGISTRY_DATABASE, registry):
            try:
                await store.write_identities(registry, persons, permits)
            except store.RegistryNotEmptyError as exc:
                raise CliError("the registry database filled up while seeding (another "
                               "seed?): run `sisada seed --reset`") from exc

    progress = SeedProgress(f"{label}: seeding {foreigners} foreigners (office and registry)")
    progress.start()

    async def run() -> SeedSummary:
        engine = create_engine(office)
        try:
            return await seed_database(engine, foreigners=foreigners, seed=seed,
                                       submitters=submitters, issuer=settings.jwt_issuer,
                                       write_identity=write_identity, progress=progress)
        finally:
            await engine.dispose()

    try:
        with database_errors(OFFICE_DATABASE, office):
            return asyncio.run(run())
    except SeedError as exc:
        raise CliError(f"{exc}: `sisada seed --reset` seeds again") from exc
    finally:
        progress.finish()


async def _foreigner_count(url: str) -> int | None:
    """How many foreigners the office holds; None when it holds no area (never seeded)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            if not await conn.scalar(select(func.count()).select_from(Area)):
                return None
            return await conn.scalar(select(func.count()).select_from(Foreigner)) or 0
    finally:
        await engine.dispose()


async def _clear(url: str) -> int:
    return await on_database(url, lambda db: clear_seeded_data(db.engine))


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    summary = seed_both(settings, args.foreigners, args.seed, reset=args.reset, label="seed")
    print(f"seeded: {describe_summary(summary)}", file=sys.stderr)
    _ensure_signing_key(settings)
    return 0


def describe_summary(summary: SeedSummary) -> str:
    return (f"{summary.foreigners} foreigners, {summary.permits} permits, "
            f"{summary.residences} residences, {summary.reports} reports, "
            f"{summary.activities} activities, {summary.officers} officers, "
            f"{summary.areas} areas")


def _ensure_signing_key(settings: Settings) -> None:
    """The seed prepares a working directory for the demo: `sisada token` and `sisada serve`
    run here share the development key it creates (token never creates one)."""
    if settings.jwt_secret or settings.jwt_public_key or settings.jwks_url:
        return
    path = Path(settings.dev_key_file)
    if path.exists():
        return
    dev_secret(settings)
    print(f"created the development signing key {path.resolve()} (shared by `sisada token` "
          "and `sisada serve` run here)", file=sys.stderr)


# -- serve -------------------------------------------------------------------------------------


def serve_options(settings: Settings, host: str, port: int) -> dict[str, object]:
    # X-Forwarded-For is believed only from the proxies named (SISADA_TRUSTED_PROXIES), by
    # the app itself (gateway/request_ids.py: the request id needs the peer's own address
    # too); uvicorn's own handling is off (it would trust 127.0.0.1 by default: anything
    # local could then pick its own address for rate limits).
    return {
        "host": host, "port": port, "log_level": settings.log_level.lower(),
        "proxy_headers": False,
        # One log stream: uvicorn's lines through the app's formatter (gateway/logging.py).
        "log_config": uvicorn_log_config(settings.log_level, settings.log_format_in_force),
        # A larger WebSocket message is refused by the server itself (close 1009) before
        # it is buffered: uvicorn would otherwise accept up to 16 MiB.
        "ws_max_size": settings.ws_max_message_bytes,
        # No permessage-deflate: each socket would keep its own zlib pair (~44 KiB) and
        # compress every frame once per socket, undoing the one render per group that
        # live feeds share (bench-subscriptions: 89.8 KiB per idle subscription and a
        # p99 of 252 ms with it offered, 46.1 KiB and 147 ms without).
        "ws_per_message_deflate": False,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
    }


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.app import create_app
    from gateway.production import check_start_up

    check_http_url(REGISTRY_URL, settings.registry_url)
    # Before anything is migrated or any worker starts: a refused production set-up is
    # one line here, not a half-done migration or one traceback per worker.
    check_start_up(settings)
    check_key_settings(settings)
    if args.migrate:
        migrate_both(settings)
    else:
        require_migrated(settings, "run `sisada migrate` first, or `sisada serve --migrate`")
    host, port = args.host or settings.host, args.port or settings.port
    ensure_port_free(host, port, "--port")
    options = serve_options(settings, host, port)
    if args.workers > 1:
        # Each worker process builds its own app from the same SISADA_* environment, and
        # writes its metrics where every worker's /metrics adds them up (gateway/metrics.py).
        from gateway.metrics import multiprocess_directory
        from gateway.workers import serve_workers

        with multiprocess_directory(settings):
            serve_workers("gateway.app:create_app", args.workers, options)
        return 0
    return run_server(create_app(settings), options)


def run_server(app: object, options: dict[str, object],
               announce: Callable[[], None] | None = None) -> int:
    """uvicorn in this process; `announce` runs once it listens (the demo's tokens)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, **options))  # type: ignore[arg-type]
    if announce is not None:
        def wait_then_announce() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                announce()

        threading.Thread(target=wait_then_announce, name="announce", daemon=True).start()
    server.run()
    # uvicorn has logged why it did not start (a startup error in the app): one line more.
    if not server.started:
        raise CliError("the server did not start (see the lines above)")
    return 0


def ensure_port_free(host: str, port: int, option: str) -> None:
    """Says which port is taken before anything starts, rather than uvicorn's bind error
    after the database work. (uvicorn still refuses a port taken in between.)"""
    # As uvicorn binds: the family from the host's spelling, SO_REUSEADDR (an address in
    # TIME_WAIT from a stopped server is not "in use").
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except socket.gaierror as exc:
            raise CliError(f"cannot listen on {host!r}: not a host name or address of this "
                           "machine (--host, SISADA_HOST)", USAGE) from exc
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliError(f"port {port} on {host} is in use (another sisada serve or "
                               f"demo?): choose another with {option}") from exc
            if exc.errno == errno.EACCES:
                raise CliError(f"may not listen on port {port} (ports below 1024 need "
                               f"privileges): choose another with {option}") from exc
            raise CliError(f"cannot listen on {host}:{port} ({exc.strerror}): check --host "
                           "and SISADA_HOST", USAGE) from exc


# -- the stand-in registry ---------------------------------------------------------------------


def cmd_registry_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run the stand-in central registry (examples/registry) as its own process."""
    if not settings.registry_token:
        raise CliError("set SISADA_REGISTRY_TOKEN (the service credential callers must "
                       "present)", USAGE)
    # Imported here: the stand-in is an example, not a dependency of the gateway.
    from examples.registry import create_registry_app, migrate_registry

    url = settings.registry_database_url
    check_database(REGISTRY_DATABASE, url, must_exist=False)
    host = args.host or settings.host
    ensure_port_free(host, args.port, "--port")
    with database_errors(REGISTRY_DATABASE, url):
        asyncio.run(migrate_registry(url))
    app = create_registry_app(url, settings.registry_token, record_path=args.record)
    # As the gateway is served: the same line format (JSON in production), so the demo's
    # terminal and compose's stream carry both processes, and no X-Forwarded-For believed
    # (its callers are services with a credential; no proxy fronts it).
    configure_logging(settings.log_level, settings.log_format_in_force)
    name_routes(app.routes)
    return run_server(app, serve_options(settings, host, args.port))


def cmd_registry_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from examples.registry import migrate_registry

    url = settings.registry_database_url
    check_database(REGISTRY_DATABASE, url, must_exist=False)
    with database_errors(REGISTRY_DATABASE, url):
        asyncio.run(migrate_registry(url))
    print("registry database migrated", file=sys.stderr)
    return 0


# -- token -------------------------------------------------------------------------------------


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    policy = load_policy(settings)
    role = args.role
    check_token_request(settings, policy, role, args.area, args.officer, args.ttl)
    check_signing_key(settings)
    area, officer = args.area, args.officer
    if role in policy.jurisdiction_levels or role in policy.officer_kinds:
        area, officer = token_claims(settings, policy, role, area, officer)
    print(mint_dev_token(settings, role, area=area, officer_id=officer, ttl_seconds=args.ttl,
                         client=args.client))
    return 0


def check_token_request(settings: Settings, policy: Policy, role: str, area: str | None,
                        officer: int | None, ttl: int | None) -> None:
    """What the gateway would refuse in the token, refused here first (usage errors). The
    roles, their levels and officer kinds are the policy's (roles.polar)."""
    if role not in policy.roles:
        raise CliError(f"unknown role {role!r}; the policy's roles: "
                       f"{', '.join(token_roles(policy))}", USAGE)
    if role == policy.anonymous_role:
        raise CliError(f"{role!r} needs no token: send no Authorization header", USAGE)
    if ttl is not None and ttl > settings.max_token_lifetime_seconds:
        raise CliError(f"--ttl exceeds SISADA_MAX_TOKEN_LIFETIME_SECONDS "
                       f"({settings.max_token_lifetime_seconds}); the gateway would refuse it",
                       USAGE)
    levels = policy.jurisdiction_levels.get(role)
    if area is not None:
        if not is_area_code(area):
            raise CliError(f"--area {area!r} is not an area code (e.g. {DEMO_KECAMATAN}, "
                           "kecamatan Setiabudi)", USAGE)
        if levels is None:
            raise CliError(f"{role} tokens carry no area: leave out --area", USAGE)
        if level_of(area) not in levels:
            raise CliError(f"{role} tokens carry an area of level {' or '.join(sorted(levels))}"
                           f"; {area} is a {level_of(area)}", USAGE)
    if officer is not None and role not in policy.officer_kinds:
        raise CliError(f"{role} tokens name no officer: leave out --officer", USAGE)


def check_signing_key(settings: Settings) -> None:
    """Sign only with a key the gateway verifies: never create a development key here, which
    a server started elsewhere would not know (it creates its own where it runs)."""
    if settings.jwt_public_key or settings.jwks_url:
        raise CliError("the gateway verifies tokens with SISADA_JWT_PUBLIC_KEY or "
                       "SISADA_JWKS_URL: tokens come from that issuer; `sisada token` signs "
                       "with SISADA_JWT_SECRET or the development key only")
    if settings.jwt_secret:
        return
    path = Path(settings.dev_key_file).resolve()
    if not path.is_file():
        raise CliError(f"no development signing key at {path}: run `sisada token` in the "
                       "directory where `sisada demo`, `seed` or `serve` ran (they create "
                       "it there), or set SISADA_DEV_KEY_FILE to that file")


def token_claims(settings: Settings, policy: Policy, role: str, area: str | None,
                 officer: int | None) -> tuple[str | None, int | None]:
    """The claims a token of `role` carries, checked against the office's data: the area
    and officer given, or the demo data's defaults."""
    require_migrated(settings)
    url = settings.database_url

    async def run() -> tuple[str | None, int | None]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                claims = await _claims(conn, policy, role, area, officer)
            kind = policy.officer_kinds.get(role)
            if kind is not None and officer is not None:
                # The same look-up the gateway makes of a token's officer.
                actual = await officer_kind(Database(engine), officer)
                if actual is None:
                    raise CliError(f"--officer {officer}: the database has no such officer",
                                   USAGE)
                if actual != kind:
                    raise CliError(f"--officer {officer} is a {actual} officer; {role} tokens "
                                   f"name a {kind} officer", USAGE)
            return claims
        finally:
            await engine.dispose()

    with database_errors(OFFICE_DATABASE, url):
        return asyncio.run(run())


async def _claims(conn: AsyncConnection, policy: Policy, role: str, area: str | None,
                  officer: int | None) -> tuple[str | None, int | None]:
    if role in policy.jurisdiction_levels:
        if area is None:
            level = policy.demo_jurisdiction_level(role)
            if level is None:
                raise CliError(f"the policy names no demo area for {role}: pass --area", USAGE)
            area = await demo_area(conn, level)
            if area is None:
                raise CliError(f"the database holds no {level} to pick for {role}: run "
                               "`sisada seed`, or pass --area")
        elif not await conn.scalar(select(func.count()).where(Area.code == area)):
            raise CliError(f"--area {area}: the database has no such area", USAGE)
    kind = policy.officer_kinds.get(role)
    if kind is not None and officer is None:
        officer = await demo_officer(conn, kind)
        if officer is None:
            raise CliError(f"the database holds no {kind} officer to name: run `sisada seed`, "
                           "or pass --officer")
    return area, officer


def token_roles(policy: Policy) -> list[str]:
    return sorted(policy.roles - {policy.anonymous_role})


# -- policy ------------------------------------------------------------------------------------


def load_policy(settings: Settings) -> Policy:
    try:
        return Policy(settings.policy_dir)
    except PolicyError as exc:
        # Oso's message goes on with a source excerpt; its first line names the file, line
        # and column (`sisada policy check` prints it all).
        raise CliError(f"policy: {str(exc).splitlines()[0]} (run `sisada policy check`)"
                       ) from exc


def cmd_policy_check(settings: Settings, args: argparse.Namespace) -> int:
    """Load and compile the policy against the schema, as the server would, and report."""
    from resolvers.scopes import untranslatable_fields
    from schema.root import build_schema, schema_fields

    try:
        policy = Policy(args.dir or settings.policy_dir)
        compiled = policy.compile(schema_fields(build_schema()))
    except PolicyError as exc:
        print(f"policy: {exc}", file=sys.stderr)
        return 1
    print(f"files: {', '.join(p.name for p in policy.files)}")
    for role in sorted(compiled.by_role):
        access = compiled.by_role[role]
        fields = sum(len(f) for f in access.readable.values())
        rows = sorted({t for filters in access.row_filters.values() for t in filters})
        print(f"{role}: {fields} readable fields; rows of {', '.join(rows) or 'no type'}")
    problems = 0
    for type_name, field_name in compiled.unmentioned:
        print(f"warning: {type_name}.{field_name} has no rule: null for everyone")
    for type_name, field_name in compiled.unknown:
        print(f"error: the policy names {type_name}.{field_name}, which the schema lacks")
        problems += 1
    for access in compiled.by_role.values():
        for type_name, field_name in untranslatable_fields(access):
            print(f"error: {access.role}'s row rules compare {type_name}.{field_name}, "
                  "which no column answers")
            problems += 1
    return 1 if problems else 0


def cmd_policy_matrix(settings: Settings, args: argparse.Namespace) -> int:
    """The access matrix of the policy, compiled against the schema as the server would."""
    import json

    from policies.matrix import access_matrix, to_html, to_markdown
    from schema.root import build_schema, schema_fields

    try:
        policy = Policy(args.dir or settings.policy_dir)
        matrix = access_matrix(policy, policy.compile(schema_fields(build_schema())))
    except PolicyError as exc:
        # One line: Oso's message goes on with a source excerpt and a help link; its first
        # line names the file, line and column (`sisada policy check` prints it all).
        print(f"policy: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    if args.format == "json":
        sys.stdout.write(json.dumps(matrix, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(to_html(matrix) if args.format == "html" else to_markdown(matrix))
    return 0


def cmd_schema(_settings: Settings, _args: argparse.Namespace) -> int:
    """The whole API schema as SDL: what a router in proxy mode validates against
    (deploy/schema.graphql is this output). Introspection answers each caller with its own
    role's contract; this is the schema every operation runs against."""
    from graphql import print_schema

    from schema.root import build_schema

    sys.stdout.write(print_schema(build_schema()._schema) + "\n")
    return 0


# -- demo --------------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate, seed if empty, start the stand-in registry, then serve and print a token per
    role and example requests — saying what it does at each step."""
    from gateway.app import create_app

    check_http_url(REGISTRY_URL, settings.registry_url)
    check_database(OFFICE_DATABASE, settings.database_url, must_exist=False)
    check_database(REGISTRY_DATABASE, settings.registry_database_url, must_exist=False)
    host, port = args.host or settings.host, args.port or settings.port
    registry_port = args.registry_port or port + 1
    # Ports first: a taken one is known before a minute of database work.
    ensure_port_free(host, port, "--port")
    if settings.registry_url is None:
        ensure_port_free("127.0.0.1", registry_port, "--registry-port")
    say(f"migrating the office database ({shown_url(settings.database_url)}) and the "
        f"registry's ({shown_url(settings.registry_database_url)})")
    migrate_both(settings)
    with database_errors(OFFICE_DATABASE, settings.database_url):
        seeded = asyncio.run(_foreigner_count(settings.database_url))
    if seeded is None:
        summary = seed_both(settings, args.foreigners, args.seed, reset=False, label="demo")
        say(f"seeded {describe_summary(summary)}")
    else:
        say(f"the database is already seeded ({seeded} foreigners): using it "
            "(`sisada seed --reset` seeds again)")
    policy = load_policy(settings)
    # uvicorn re-raises the SIGTERM it caught once it has shut down; by default that ends
    # the process on the spot, before `finally` stops the registry child. As an exception
    # it unwinds through `finally`.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    registry = None
    if settings.registry_url is None:
        say(f"starting the stand-in registry on http://127.0.0.1:{registry_port}/graphql")
        registry, settings = _start_demo_registry(settings, registry_port)
    else:
        say(f"using the registry at {REGISTRY_URL}")
    try:
        say(f"starting the gateway on http://{host}:{port}")
        # GraphiQL's role picker (gateway/demo_tokens.py): on the development key only.
        settings = settings.model_copy(update={"demo_tokens": True})
        banner = _demo_banner(settings, policy, host, port)
        app = create_app(settings)
        return run_server(app, serve_options(settings, host, port),
                          announce=lambda: print(banner, flush=True))
    finally:
        if registry is not None:
            registry.terminate()
            registry.wait(timeout=10)


def _exit_on_signal(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


def _start_demo_registry(settings: Settings, port: int) -> tuple[subprocess.Popen[bytes],
                                                                  Settings]:
    """The stand-in registry as its own process (as in production: another service), with
    a fresh service credential that only it and this gateway know."""
    token = settings.registry_token or secrets.token_urlsafe(32)
    env = {**os.environ, "SISADA_REGISTRY_TOKEN": token,
           "SISADA_REGISTRY_DATABASE_URL": settings.registry_database_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "registry", "serve", "--host", "127.0.0.1",
         "--port", str(port)], env=env)
    health = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(health, timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise CliError("the stand-in registry did not start (see the lines above)"
                               ) from None
            time.sleep(0.2)
    return process, settings.model_copy(update={
        "registry_url": f"http://127.0.0.1:{port}/graphql", "registry_token": token})


def _demo_banner(settings: Settings, policy: Policy, host: str, port: int) -> str:
    """What the demo prints once the gateway listens: a token per role, example requests."""
    url = f"http://{host}:{port}/graphql"
    lines = [f"\nSisada gateway demo — GraphiQL at http://{host}:{port}/graphiql\n"]
    for role in token_roles(policy):
        try:
            area, officer = token_claims(settings, policy, role, None, None)
        except CliError as exc:
            lines.append(f"# {role}: no demo token ({exc.message})")
            continue
        token = mint_dev_token(settings, role, area=area, officer_id=officer)
        where = " ".join(x for x in (f"area={area}" if area else "",
                                      f"officer={officer}" if officer else "") if x)
        lines.append(f"# {role} {where}".rstrip())
        lines.append(f"export TOKEN_{role.upper()}={token}")
    lines.append(f"# {policy.anonymous_role}: no token\n")
    lines.append("Try, e.g.:")
    lines.append(f"  curl -s {url} -H 'content-type: application/json' "
                 "-H \"authorization: Bearer $TOKEN_POLICE\" "
                 "-d '{\"query\":\"{ foreigners(first: 3) { nodes { id fullName nationality "
                 "permitType residence { streetAddress areaCode } } } }\"}'")
    purposes = policy.purposes()
    if purposes:
        # Identity is recorded in the access trail with the purpose the caller states.
        lines.append(f"  curl -s {url} -H 'content-type: application/json' "
                     "-H \"authorization: Bearer $TOKEN_IMMIGRATION_OFFICER\" "
                     f"-H 'sisada-purpose: {purposes[0]}' "
                     "-d '{\"query\":\"{ foreigners(first: 3) { nodes { id fullName "
                     "nationality } } }\"}'")
        lines.append(f"  (purposes: {', '.join(purposes)})")
    lines.append(f"  curl -s {url} -H 'content-type: application/json' "
                 "-d '{\"query\":\"{ areas(level: KECAMATAN) { code name "
                 "foreignerCount } }\"}'")
    return "\n".join(lines) + "\n"


# -- the command line --------------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse prints the usage first): the
    subcommand, what is wrong, and where the help is. Exit 2, as argparse."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def int_between(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` (inclusive)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low:,} to {high:,}" if high is not None else f"{low:,} or more"
            raise argparse.ArgumentTypeError(f"must be {bound}, not {value:,}")
        return value

    return parse


PORT = int_between(1, 65_535)
FOREIGNERS = int_between(1, MAX_SEED_FOREIGNERS)
FORMATTER = argparse.RawDescriptionHelpFormatter


def build_parser(settings: Settings | None = None, policy: Policy | None = None
                 ) -> argparse.ArgumentParser:
    """The parser; `settings` and `policy` only word the help (current host, port, roles)."""
    current = settings or Settings.model_construct()
    parser = OneLineParser(prog="sisada", description=__doc__, formatter_class=FORMATTER)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
        # Paragraphs kept (argparse would join them), each wrapped for a terminal.
        paragraphs = [summary, *details.split("\n")] if details else [summary]
        return sub.add_parser(name, help=summary, formatter_class=FORMATTER,
                              description="\n\n".join(textwrap.fill(p, 88) for p in paragraphs))

    command("migrate", "create or upgrade the office database and the stand-in registry's",
            f"Office: {OFFICE_DATABASE} (now {_shown(current.database_url)}); registry: "
            f"{REGISTRY_DATABASE} (now {_shown(current.registry_database_url)}).\nIdempotent; "
            "identity an older office database holds moves to the registry."
            ).set_defaults(func=cmd_migrate)

    seed = command("seed", "fill both databases with synthetic demo data (Jakarta Selatan)",
                   "Deterministic for a given --seed. Identity goes to the registry database "
                   "only. Run `sisada migrate` first. Creates the development signing key "
                   f"({current.dev_key_file}) if no key is configured.")
    seed.add_argument("--foreigners", type=FOREIGNERS, default=DEFAULT_FOREIGNERS,
                      metavar="N", help=f"how many foreigners, 1 to {MAX_SEED_FOREIGNERS:,} "
                                        "(default: %(default)s)")
    seed.add_argument("--seed", type=int, default=DEFAULT_SEED,
                      help="the random seed (default: %(default)s)")
    seed.add_argument("--reset", action="store_true",
                      help="delete the demo data of both databases first (the access trail "
                           "is kept); without it an already seeded database is refused")
    seed.set_defaults(func=cmd_seed)

    serve = command("serve", "run the gateway (GraphQL at /graphql, GraphiQL at /graphiql)",
                    "The database must be migrated (or pass --migrate) and reachable.")
    serve.add_argument("--host", help=f"address to listen on (default: SISADA_HOST, now "
                                      f"{current.host})")
    serve.add_argument("--port", type=PORT, help=f"port (default: SISADA_PORT, now "
                                                 f"{current.port})")
    serve.add_argument("--migrate", action="store_true",
                       help="migrate both databases first (default: no)")
    serve.add_argument("--workers", type=int_between(1, 64), default=1, metavar="N",
                       help="worker processes (uvicorn's); one is enough for the limits "
                            "(default: %(default)s)")
    serve.set_defaults(func=cmd_serve)

    token = command("token", "print a development token for a role, alone, on stdout",
                    "Signed with SISADA_JWT_SECRET or the development key file "
                    f"(SISADA_DEV_KEY_FILE, now {current.dev_key_file}) that `sisada seed`, "
                    "`serve` and `demo` create where they run; never creates a key.\n"
                    "Area and officer default to the seeded demo data's: an area of the "
                    "level the policy's demo_jurisdiction names, in kecamatan Setiabudi.")
    roles = (", ".join(token_roles(policy)) if policy is not None
             else "the policy does not load: see `sisada policy check`")
    token.add_argument("role", metavar="ROLE", help=f"one of the policy's roles: {roles}")
    token.add_argument("--area", metavar="CODE",
                       help="jurisdiction area code, at a level the policy allows the role "
                            "(default: one in the demo kecamatan, from the seeded data)")
    token.add_argument("--officer", type=int_between(1, 2**31 - 1), metavar="ID",
                       help="officer id, for roles whose token names one (default: the "
                            "first officer of the kind the policy requires)")
    token.add_argument("--ttl", type=int_between(1), metavar="SECONDS",
                       help="lifetime in seconds, at most SISADA_MAX_TOKEN_LIFETIME_SECONDS "
                            "(default: SISADA_DEV_TOKEN_TTL_SECONDS, now "
                            f"{default_dev_token_ttl(current)})")
    token.add_argument("--client", type=operations_cli.client_name, metavar="NAME",
                       help="the partner application the token is for (the `client` claim: "
                            "which registered operations it may run, `sisada operations`; "
                            "default: none)")
    token.set_defaults(func=cmd_token)

    check = command("policy-check", "compile the policy and report problems (the same as "
                                    "`sisada policy check`)")
    check.add_argument("--dir", type=Path,
                       help="a directory of .polar files (default: SISADA_POLICY_DIR, else "
                            "the shipped policies/)")
    check.set_defaults(func=cmd_policy_check)
    policy_parser = command("policy", "the policy: check it, or print its access matrix")
    policy_sub = policy_parser.add_subparsers(dest="policy_command", required=True,
                                              metavar="COMMAND")
    policy_check = policy_sub.add_parser(
        "check", help="compile the policy against the schema and report problems",
        description="Compile the policy against the schema and report problems "
                    "(exit 1 when there are errors).")
    policy_check.add_argument("--dir", type=Path,
                              help="a directory of .polar files (default: SISADA_POLICY_DIR, "
                                   "else the shipped policies/)")
    policy_check.set_defaults(func=cmd_policy_check)
    matrix = policy_sub.add_parser(
        "matrix", help="who can see what, generated from the policy",
        description="Who can see what, generated from the policy (docs/access-matrix.md "
                    "is this output).")
    matrix.add_argument("--format", choices=["md", "json", "html"], default="md",
                        help="output format (default: %(default)s)")
    matrix.add_argument("--dir", type=Path,
                        help="a directory of .polar files (default: SISADA_POLICY_DIR, else "
                             "the shipped policies/)")
    matrix.set_defaults(func=cmd_policy_matrix)

    command("schema", "print the whole API schema (SDL) on stdout",
            "What a router in proxy mode validates against (deploy/schema.graphql is this "
            "output): introspection shows each caller its own role's contract, this is the "
            "schema every operation runs against. Federation routers read `_service { sdl }` "
            "instead.").set_defaults(func=cmd_schema)

    demo = command("demo", "migrate, seed if empty, start the stand-in registry and the "
                           "gateway, print a token per role",
                   "Says what it does at each step; the tokens and example requests follow "
                   "once the gateway listens.")
    demo.add_argument("--foreigners", type=FOREIGNERS, default=DEFAULT_FOREIGNERS,
                      metavar="N", help="foreigners to seed into an empty database, 1 to "
                                        f"{MAX_SEED_FOREIGNERS:,} (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=DEFAULT_SEED,
                      help="the random seed (default: %(default)s)")
    demo.add_argument("--host", help=f"address to listen on (default: SISADA_HOST, now "
                                     f"{current.host})")
    demo.add_argument("--port", type=PORT, help=f"the gateway's port (default: SISADA_PORT, "
                                                f"now {current.port})")
    demo.add_argument("--registry-port", type=PORT,
                      help="port of the stand-in registry (default: the gateway's + 1); "
                           "ignored when SISADA_REGISTRY_URL names a registry")
    demo.set_defaults(func=cmd_demo)

    registry = command("registry", "the stand-in central registry (identity)")
    registry_sub = registry.add_subparsers(dest="registry_command", required=True,
                                           metavar="COMMAND")
    registry_serve = registry_sub.add_parser(
        "serve", help="run the stand-in registry",
        description="Run the stand-in registry, a Federation v2 subgraph over "
                    f"{REGISTRY_DATABASE}; needs SISADA_REGISTRY_TOKEN.")
    registry_serve.add_argument("--host", help=f"address to listen on (default: SISADA_HOST, "
                                               f"now {current.host})")
    registry_serve.add_argument("--port", type=PORT, default=8001,
                                help="port (default: %(default)s)")
    registry_serve.add_argument("--record", type=Path,
                                help="append every /graphql request to this file (tests; "
                                     "default: none)")
    registry_serve.set_defaults(func=cmd_registry_serve)
    registry_sub.add_parser(
        "migrate", help="create the registry's schema",
        description=f"Create the registry's schema in {REGISTRY_DATABASE} (idempotent)."
    ).set_defaults(func=cmd_registry_migrate)
    trail_cli.register(sub)
    operations_cli.register(sub, current)
    return parser


def _shown(url: str) -> str:
    try:
        return shown_url(url)
    except Exception:  # the help must show even when the setting is malformed
        return "not a database URL"


def _command(args: argparse.Namespace) -> str:
    parts = [args.command] + [getattr(args, name) for name in
                              ("policy_command", "registry_command", "trail_command",
                               "operations_command")
                              if getattr(args, name, None)]
    return " ".join(parts)


def _settings() -> tuple[Settings | None, CliError | None]:
    try:
        return get_settings(), None
    except ValidationError as exc:
        # The setting's name and what is wrong, never its value (it may be a secret).
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "a setting"
        name = (name if name.startswith(("SISADA_", "OTEL_", "PROMETHEUS_"))
                else f"SISADA_{name}")
        message = str(error["msg"]).removeprefix("Value error, ").splitlines()[0]
        return None, CliError(f"{name}: {message}", USAGE)
    except SettingsError as exc:
        # pydantic-settings could not decode a value (a complex one that is not JSON): its
        # message names the field, never the value.
        field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else "a setting"
        return None, CliError(f"SISADA_{field.upper()}: cannot be read (not valid JSON)", USAGE)


# The exit status of a command whose reader left early (`sisada … | head -1`): what a
# program killed by SIGPIPE reports, 128 + 13, as `yes | head -1` does.
READER_LEFT = 128 + signal.SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    """`sisada`: every subcommand, its --help included, ends without a traceback when the
    reader of its output goes away (`| head -1`): nothing more is written, exit 141."""
    try:
        try:
            return _main(argv)
        finally:
            # Found here, not in the interpreter's own flush at exit (which would print
            # "Exception ignored … BrokenPipeError").
            sys.stdout.flush()
    except BrokenPipeError:
        # Whatever is still buffered goes nowhere, quietly (Python's documented recipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return READER_LEFT


def _main(argv: Sequence[str] | None) -> int:
    settings, settings_error = _settings()
    policy = None
    if settings is not None:
        try:
            policy = Policy(settings.policy_dir)
        except PolicyError:
            policy = None  # the help says so; the commands that need it say why
    args = build_parser(settings, policy).parse_args(argv)
    name = _command(args)
    try:
        if settings_error is not None:
            raise settings_error
        assert settings is not None
        return int(args.func(settings, args))
    except CliError as exc:
        print(f"sisada {name}: {exc.message}", file=sys.stderr)
        return exc.code
    except PolicyError as exc:
        # The server's own load (create_app); its first line names the file, line and column.
        print(f"sisada {name}: policy: {str(exc).splitlines()[0]} (run `sisada policy check`)",
              file=sys.stderr)
        return FAILURE
    except AuthConfigError as exc:
        # Written to name the setting at fault, never its value (gateway/auth.py).
        print(f"sisada {name}: {exc}", file=sys.stderr)
        return USAGE
    except ProductionSettingsError as exc:
        # create_app's start-up check; names settings only (gateway/production.py).
        print(f"sisada {name}: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print(f"\nsisada {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
