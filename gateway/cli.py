"""The `sisada` command: migrate, seed, serve, token, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from sqlalchemy import func, select

from gateway import trail_cli
from gateway.auth import mint_dev_token
from gateway.settings import Settings, get_settings
from policies import Policy, PolicyError
from resolvers import migrate
from resolvers.db import create_engine
from resolvers.models import Area, Officer, Residence
from resolvers.seed import SeedError, policy_submitters, seed_database

DEMO_KECAMATAN = "31.74.02"  # Setiabudi: the demo jurisdiction


def migrate_both(settings: Settings) -> None:
    """Migrate the office database and the stand-in registry's. Identity an office database
    still holds from before the split is copied into the registry first, then dropped."""
    from examples.registry import store

    asyncio.run(store.migrate_registry(settings.registry_database_url))
    persons, permits = migrate.identity_rows(settings.database_url)
    if persons:
        asyncio.run(store.write_identities(settings.registry_database_url, persons, permits))
        print(f"moved the identity of {len(persons)} foreigners to the registry",
              file=sys.stderr)
    migrate.upgrade(settings.database_url, identity_moved=bool(persons))
    if persons:
        migrate.scrub_dropped_identity(settings.database_url)


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    migrate_both(settings)
    print("databases migrated (office and registry)", file=sys.stderr)
    return 0


async def _seed(settings: Settings, foreigners: int, seed: int) -> int:
    from examples.registry import store

    # The demo reports are owned by the principals `sisada token` mints: the policy names
    # their roles, the settings the issuer.
    submitters = policy_submitters(Policy(settings.policy_dir))
    engine = create_engine(settings.database_url)
    registry = settings.registry_database_url
    try:
        await store.migrate_registry(registry)
        if not await _is_empty(settings):
            raise SeedError("database already seeded")
        if not await store.registry_is_empty(registry):
            raise SeedError("the registry database already holds people")
        # Identity goes to the registry only; the office rows commit after it is written.
        summary = await seed_database(engine, foreigners=foreigners, seed=seed,
                                      submitters=submitters, issuer=settings.jwt_issuer,
                                      write_identity=partial(store.write_identities, registry))
    except SeedError as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(f"seeded: {summary}", file=sys.stderr)
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_seed(settings, args.foreigners, args.seed))


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app

    if getattr(args, "migrate", False):
        migrate_both(settings)

    host, port = args.host or settings.host, args.port or settings.port
    workers = getattr(args, "workers", 1) or 1
    # X-Forwarded-For is believed only from the proxies named (uvicorn would trust
    # 127.0.0.1 by default: anything local could then pick its own address for rate limits).
    proxies = settings.trusted_proxies
    options: dict[str, object] = {
        "host": host, "port": port, "log_level": settings.log_level.lower(),
        "proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or None,
        # A larger WebSocket message is refused by the server itself (close 1009) before
        # it is buffered: uvicorn would otherwise accept up to 16 MiB.
        "ws_max_size": settings.ws_max_message_bytes,
    }
    if workers > 1:
        # Each worker process builds its own app from the same SISADA_* environment.
        uvicorn.run("gateway.app:create_app", factory=True, workers=workers, **options)
        return 0
    uvicorn.run(create_app(settings), **options)
    return 0


def cmd_registry_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run the stand-in central registry (examples/registry) as its own process."""
    if not settings.registry_token:
        print("registry serve: set SISADA_REGISTRY_TOKEN (the service credential callers "
              "must present)", file=sys.stderr)
        return 2
    import uvicorn

    # Imported here: the stand-in is an example, not a dependency of the gateway.
    from examples.registry import create_registry_app, migrate_registry

    asyncio.run(migrate_registry(settings.registry_database_url))
    app = create_registry_app(settings.registry_database_url, settings.registry_token,
                              record_path=args.record)
    uvicorn.run(app, host=args.host or settings.host, port=args.port,
                log_level=settings.log_level.lower())
    return 0


def cmd_registry_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from examples.registry import migrate_registry

    asyncio.run(migrate_registry(settings.registry_database_url))
    print("registry database migrated", file=sys.stderr)
    return 0


async def _demo_area(settings: Settings, level: str) -> str | None:
    """The area of `level` inside the demo kecamatan where most foreigners live."""
    if level == "kecamatan":
        return DEMO_KECAMATAN
    if level == "city":
        return DEMO_KECAMATAN.rsplit(".", 1)[0]
    column = getattr(Residence, f"{level}_code")
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            best = await conn.scalar(
                select(column)
                .where(Residence.valid_to.is_(None), Residence.kecamatan_code == DEMO_KECAMATAN)
                .group_by(column)
                .order_by(func.count().desc(), column)
                .limit(1)
            )
            if best is None:
                best = await conn.scalar(
                    select(Area.code).where(Area.level == level,
                                            Area.code.like(DEMO_KECAMATAN + ".%"))
                    .order_by(Area.code).limit(1)
                )
            return best
    finally:
        await engine.dispose()


async def _demo_officer(settings: Settings, kind: str) -> int | None:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(
                select(Officer.id).where(Officer.is_supervisor.is_(kind == "supervisor"))
                .order_by(Officer.id).limit(1)
            )
    finally:
        await engine.dispose()


def demo_claims(settings: Settings, policy: Policy, role: str, area: str | None = None,
                officer: int | None = None) -> tuple[str | None, int | None]:
    """The claims not given, from the demo data: an area of the role's demo level, the
    first officer of the kind the role's tokens must name (policy: roles.polar)."""
    level = policy.demo_jurisdiction_level(role)
    kind = policy.officer_kinds.get(role)
    if area is None and level:
        area = asyncio.run(_demo_area(settings, level))
    if officer is None and kind:
        officer = asyncio.run(_demo_officer(settings, kind))
    return area, officer


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    policy = Policy(settings.policy_dir)
    if args.role not in policy.roles:
        print(f"unknown role {args.role!r}; known: {', '.join(sorted(policy.roles))}",
              file=sys.stderr)
        return 2
    if args.role == policy.anonymous_role:
        print(f"{args.role!r} needs no token: send no Authorization header", file=sys.stderr)
        return 2
    area, officer = demo_claims(settings, policy, args.role, args.area, args.officer)
    if args.ttl is not None and args.ttl > settings.max_token_lifetime_seconds:
        print(f"token: --ttl exceeds SISADA_MAX_TOKEN_LIFETIME_SECONDS "
              f"({settings.max_token_lifetime_seconds}); the gateway would refuse it",
              file=sys.stderr)
        return 2
    try:
        token = mint_dev_token(settings, args.role, area=area, officer_id=officer,
                               ttl_seconds=args.ttl)
    except ValueError as exc:
        print(f"token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


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


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate, seed if empty, start the stand-in registry, print a token per role and
    example requests, then serve."""
    migrate_both(settings)
    if asyncio.run(_is_empty(settings)):
        asyncio.run(_seed(settings, args.foreigners, args.seed))
    policy = Policy(settings.policy_dir)
    host, port = args.host or settings.host, args.port or settings.port
    registry = None
    if settings.registry_url is None:
        registry, settings = _start_demo_registry(settings, args.registry_port or port + 1)
    try:
        return _demo(settings, policy, host, port, args)
    finally:
        if registry is not None:
            registry.terminate()
            registry.wait(timeout=10)


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
                raise SystemExit("demo: the registry did not start (see above)") from None
            time.sleep(0.2)
    print(f"registry (stand-in) at http://127.0.0.1:{port}/graphql", file=sys.stderr)
    return process, settings.model_copy(update={
        "registry_url": f"http://127.0.0.1:{port}/graphql", "registry_token": token})


def _demo(settings: Settings, policy: Policy, host: str, port: int,
          args: argparse.Namespace) -> int:
    url = f"http://{host}:{port}/graphql"
    print(f"\nSisada gateway demo — GraphiQL at http://{host}:{port}/graphiql\n")
    for role in sorted(policy.roles - {policy.anonymous_role}):
        area, officer = demo_claims(settings, policy, role)
        token = mint_dev_token(settings, role, area=area, officer_id=officer)
        where = " ".join(x for x in (f"area={area}" if area else "",
                                      f"officer={officer}" if officer else "") if x)
        print(f"# {role} {where}".rstrip())
        print(f"export TOKEN_{role.upper()}={token}")
    print(f"# {policy.anonymous_role}: no token\n")
    print("Try, e.g.:")
    print(f"  curl -s {url} -H 'content-type: application/json' "
          "-H \"authorization: Bearer $TOKEN_POLICE\" "
          "-d '{\"query\":\"{ foreigners(first: 3) { nodes { id fullName nationality "
          "permitType residence { streetAddress areaCode } } } }\"}'")
    purposes = policy.purposes()
    if purposes:
        # Identity is recorded in the access trail with the purpose the caller states.
        print(f"  curl -s {url} -H 'content-type: application/json' "
              "-H \"authorization: Bearer $TOKEN_IMMIGRATION_OFFICER\" "
              f"-H 'sisada-purpose: {purposes[0]}' "
              "-d '{\"query\":\"{ foreigners(first: 3) { nodes { id fullName nationality } } }\"}'")
        print(f"  (purposes: {', '.join(purposes)})")
    print(f"  curl -s {url} -H 'content-type: application/json' "
          "-d '{\"query\":\"{ areas(level: \\\"kecamatan\\\") { code name foreignerCount } }\"}'")
    print(flush=True)
    return cmd_serve(settings, args)


async def _is_empty(settings: Settings) -> bool:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return not await conn.scalar(select(func.count()).select_from(Area))
    finally:
        await engine.dispose()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sisada", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(
        func=cmd_migrate)
    seed = sub.add_parser("seed", help="fill an empty database with synthetic demo data")
    seed.add_argument("--foreigners", type=int, default=3000)
    seed.add_argument("--seed", type=int, default=20261128)
    seed.set_defaults(func=cmd_seed)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--migrate", action="store_true", help="migrate the database first")
    serve.add_argument("--workers", type=_positive, default=1,
                       help="worker processes (uvicorn's); one is enough for the limits")
    serve.set_defaults(func=cmd_serve)
    token = sub.add_parser("token", help="print a development token for a role")
    token.add_argument("role")
    token.add_argument("--area", help="jurisdiction area code (default: a demo one)")
    token.add_argument("--officer", type=int, help="officer id")
    token.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    token.set_defaults(func=cmd_token)
    check = sub.add_parser("policy-check", help="compile the policy and report problems")
    check.add_argument("--dir", type=Path, help="a directory of .polar files")
    check.set_defaults(func=cmd_policy_check)
    policy = sub.add_parser("policy", help="the policy: check it, or print its access matrix")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    policy_check = policy_sub.add_parser("check", help="the same as policy-check")
    policy_check.add_argument("--dir", type=Path, help="a directory of .polar files")
    policy_check.set_defaults(func=cmd_policy_check)
    matrix = policy_sub.add_parser("matrix", help="who can see what, generated from the policy")
    matrix.add_argument("--format", choices=["md", "json", "html"], default="md")
    matrix.add_argument("--dir", type=Path, help="a directory of .polar files")
    matrix.set_defaults(func=cmd_policy_matrix)
    demo = sub.add_parser("demo", help="migrate, seed, print tokens and serve")
    demo.add_argument("--foreigners", type=int, default=3000)
    demo.add_argument("--seed", type=int, default=20261128)
    demo.add_argument("--host")
    demo.add_argument("--port", type=int)
    demo.add_argument("--registry-port", type=int,
                      help="port of the stand-in registry (default: the gateway's + 1); "
                           "ignored when SISADA_REGISTRY_URL names a registry")
    demo.set_defaults(func=cmd_demo)
    registry = sub.add_parser("registry", help="the stand-in central registry (identity)")
    registry_sub = registry.add_subparsers(dest="registry_command", required=True)
    registry_serve = registry_sub.add_parser("serve", help="run the stand-in registry")
    registry_serve.add_argument("--host")
    registry_serve.add_argument("--port", type=int, default=8001)
    registry_serve.add_argument("--record", type=Path,
                                help="append every /graphql request to this file (tests)")
    registry_serve.set_defaults(func=cmd_registry_serve)
    registry_sub.add_parser("migrate", help="create the registry's schema").set_defaults(
        func=cmd_registry_migrate)
    trail_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(get_settings(), args))


if __name__ == "__main__":
    sys.exit(main())
