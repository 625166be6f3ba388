"""The mistakes a newcomer makes with `sisada`, each answered in one line on stderr with a
documented exit code (2: the command line or a setting is wrong; 1: the command could not
do its work; `trail` keeps 2 for an unreadable database) and never a traceback. Real
processes of the installed command, each in a directory of its own, over real SQLite files
and real PostgreSQL databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import jwt
import pytest
from conftest import SETIABUDI, TEST_SECRET, _create_pg_database, _drop_pg_database, free_port

from policies import Policy

SISADA = str(Path(sys.executable).parent / "sisada")
SECRET_PASSWORD = "s3cr3t-pw-never-shown"
FAILURE, USAGE = 1, 2
SEEDED_FOREIGNERS = 60


@dataclass
class Cli:
    """`sisada` run in `path` with only the settings given (none leak in from the caller)."""

    path: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SISADA_")}
        return subprocess.run([SISADA, *args], cwd=self.path, capture_output=True, text=True,
                              env={**base, "SISADA_LOG_LEVEL": "WARNING", **self.env, **env},
                              timeout=120)


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single stderr line of a failed command; nothing on stdout, no traceback. (The
    demo's progress lines, `demo: …`, may come before it.)"""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == code, output
    assert result.stdout == "", output
    lines = [line for line in result.stderr.splitlines() if not line.startswith("demo: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@contextlib.contextmanager
def databases(backend: str, tmp: Path) -> Iterator[tuple[str, str]]:
    """(office, registry) URLs of two empty, unmigrated databases of `backend`."""
    if backend == "sqlite":
        yield (f"sqlite+aiosqlite:///{tmp / 'office.db'}",
               f"sqlite+aiosqlite:///{tmp / 'registry.db'}")
        return
    names = [_create_pg_database(), _create_pg_database()]
    try:
        yield tuple(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{n}" for n in names)  # type: ignore[misc]
    finally:
        for name in names:
            _drop_pg_database(name)


def cli_over(path: Path, office: str, registry: str, **env: str) -> Cli:
    return Cli(path, {"SISADA_DATABASE_URL": office, "SISADA_REGISTRY_DATABASE_URL": registry,
                      **env})


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    """Empty databases, not yet migrated, and no signing key in the directory."""
    with databases(request.param, tmp_path) as (office, registry):
        yield cli_over(tmp_path, office, registry)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Cli]:
    """Migrated and seeded databases; `sisada seed` left the development key here."""
    path = tmp_path_factory.mktemp(f"seeded-{request.param}")
    with databases(request.param, path) as (office, registry):
        cli = cli_over(path, office, registry)
        for args in (("migrate",), ("seed", "--foreigners", str(SEEDED_FOREIGNERS))):
            done = cli.run(*args)
            assert done.returncode == 0, done.stderr
        yield cli


def roles_with_tokens() -> list[str]:
    policy = Policy()
    return sorted(policy.roles - {policy.anonymous_role})


def count_rows(url: str, table: str) -> int:
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.split(":///", 1)[1])) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    async def count() -> int:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=5)
        try:
            return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        finally:
            await conn.close()

    return asyncio.run(count())


# -- seed ---------------------------------------------------------------------------------------


def test_seed_before_migrate_says_to_migrate(fresh: Cli) -> None:
    line = one_line_error(fresh.run("seed"), FAILURE)
    assert line.startswith("sisada seed: ")
    assert "run `sisada migrate` first" in line


@pytest.mark.parametrize("count", ["-5", "0", "100000001", "many"])
def test_seed_with_an_impossible_number_of_foreigners_is_a_usage_error(
    tmp_path: Path, count: str,
) -> None:
    line = one_line_error(Cli(tmp_path).run("seed", "--foreigners", count), USAGE)
    assert line.startswith("sisada seed: argument --foreigners: ")
    assert "sisada seed --help" in line


def test_seed_of_a_seeded_database_suggests_reset(seeded: Cli) -> None:
    line = one_line_error(seeded.run("seed"), FAILURE)
    assert "already seeded" in line
    assert "sisada seed --reset" in line


def test_seed_reset_clears_both_databases_and_seeds_again(fresh: Cli) -> None:
    office, registry = fresh.env["SISADA_DATABASE_URL"], fresh.env["SISADA_REGISTRY_DATABASE_URL"]
    assert fresh.run("migrate").returncode == 0
    assert fresh.run("seed", "--foreigners", "40").returncode == 0
    again = fresh.run("seed", "--reset", "--foreigners", "25")
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert (count_rows(office, "foreigner"), count_rows(registry, "person")) == (25, 25)
    # The chain the gateway keeps is untouched by a reset.
    assert fresh.run("trail", "verify").returncode == 0


# -- the database URLs --------------------------------------------------------------------------


COMMANDS = [("migrate",), ("seed",), ("serve",), ("demo",), ("token", "police")]


def with_free_ports(args: tuple[str, ...]) -> tuple[str, ...]:
    # Never the default ports: another gateway may run on this machine.
    if args[0] in ("serve", "demo"):
        args += ("--port", str(free_port()))
    if args[0] == "demo":
        args += ("--registry-port", str(free_port()))
    return args


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("url", ["not a url", "postgresql://postgres@127.0.0.1:5432/sisada"],
                         ids=["malformed", "sync-driver"])
def test_a_malformed_database_url_is_a_usage_error(
    tmp_path: Path, args: tuple[str, ...], url: str,
) -> None:
    cli = Cli(tmp_path, {"SISADA_DATABASE_URL": url, "SISADA_JWT_SECRET": TEST_SECRET})
    line = one_line_error(cli.run(*with_free_ports(args)), USAGE)
    assert line.startswith(f"sisada {args[0]}: SISADA_DATABASE_URL ")


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_unreachable_database_is_one_line_without_the_password(
    tmp_path: Path, args: tuple[str, ...],
) -> None:
    url = f"postgresql+asyncpg://sisada:{SECRET_PASSWORD}@127.0.0.1:{free_port()}/sisada"
    cli = Cli(tmp_path, {"SISADA_DATABASE_URL": url, "SISADA_JWT_SECRET": TEST_SECRET,
                         "SISADA_REGISTRY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/r.db"})
    result = cli.run(*with_free_ports(args))
    line = one_line_error(result, FAILURE)
    assert "refused the connection" in line
    assert "SISADA_DATABASE_URL=postgresql+asyncpg://sisada:***@127.0.0.1" in line
    assert SECRET_PASSWORD not in result.stderr


def test_trail_over_an_unreachable_database_is_one_line_without_the_password(
    tmp_path: Path,
) -> None:
    url = f"postgresql+asyncpg://sisada:{SECRET_PASSWORD}@127.0.0.1:{free_port()}/sisada"
    result = Cli(tmp_path, {"SISADA_DATABASE_URL": url}).run("trail", "verify")
    line = one_line_error(result, USAGE)  # trail: 2 when the database cannot be read
    assert line.startswith("trail verify: failed (the database refused the connection")
    assert SECRET_PASSWORD not in result.stderr


def test_a_database_that_does_not_exist_says_to_create_it(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/sisada_no_such_database"
    line = one_line_error(Cli(tmp_path, {"SISADA_DATABASE_URL": url}).run("migrate"), FAILURE)
    assert "the database does not exist" in line


def test_an_sqlite_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "office.db").write_text("not a database\n" * 100)
    cli = Cli(tmp_path, {"SISADA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/office.db"})
    # `trail` answers 2 for a database it cannot read; the others 1.
    for args, code in ((("migrate",), FAILURE), (("seed",), FAILURE),
                       (("trail", "verify"), USAGE)):
        assert "not an SQLite database" in one_line_error(cli.run(*args), code)


def test_a_malformed_registry_database_url_is_a_usage_error(tmp_path: Path) -> None:
    cli = Cli(tmp_path, {"SISADA_REGISTRY_DATABASE_URL": "registry please"})
    for args in (("migrate",), ("registry", "migrate")):
        line = one_line_error(cli.run(*args), USAGE)
        assert "SISADA_REGISTRY_DATABASE_URL is not a database URL" in line


def test_an_unreachable_registry_database_is_named(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres:{SECRET_PASSWORD}@127.0.0.1:{free_port()}/registry"
    result = Cli(tmp_path, {"SISADA_REGISTRY_DATABASE_URL": url}).run("migrate")
    line = one_line_error(result, FAILURE)
    assert "(SISADA_REGISTRY_DATABASE_URL=" in line
    assert SECRET_PASSWORD not in result.stderr


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_malformed_registry_url_is_a_usage_error(seeded: Cli, command: str) -> None:
    result = seeded.run(*with_free_ports((command,)), SISADA_REGISTRY_URL="registry:8001")
    assert "SISADA_REGISTRY_URL is not an http(s) URL" in one_line_error(result, USAGE)


def test_a_malformed_setting_names_it_not_its_value(tmp_path: Path) -> None:
    line = one_line_error(Cli(tmp_path, {"SISADA_PORT": "eighty"}).run("migrate"), USAGE)
    assert line.startswith("sisada migrate: SISADA_PORT: ")
    assert "eighty" not in line


# -- serve --------------------------------------------------------------------------------------


def test_serve_before_migrate_says_to_migrate(fresh: Cli) -> None:
    line = one_line_error(fresh.run(*with_free_ports(("serve",))), FAILURE)
    assert "`sisada serve --migrate`" in line


def test_serve_on_a_port_in_use_says_so(seeded: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(seeded.run("serve", "--port", str(port)), FAILURE)
    assert f"port {port} on 127.0.0.1 is in use" in line


# -- token --------------------------------------------------------------------------------------


def test_token_help_lists_the_policys_roles(tmp_path: Path) -> None:
    result = Cli(tmp_path).run("token", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for role in roles_with_tokens():
        assert role in text


def test_token_for_an_unknown_role_lists_the_policys_roles(seeded: Cli) -> None:
    line = one_line_error(seeded.run("token", "chief"), USAGE)
    assert line.startswith("sisada token: unknown role 'chief'; the policy's roles: ")
    assert line.endswith(", ".join(roles_with_tokens()))


@pytest.mark.parametrize("ttl", ["-5", "0", "ten"])
def test_token_with_an_impossible_ttl_is_a_usage_error(seeded: Cli, ttl: str) -> None:
    line = one_line_error(seeded.run("token", "police", "--ttl", ttl), USAGE)
    assert line.startswith("sisada token: argument --ttl: ")


def test_token_longer_than_the_gateway_accepts_is_refused(seeded: Cli) -> None:
    line = one_line_error(seeded.run("token", "police", "--ttl", str(10**7)), USAGE)
    assert "SISADA_MAX_TOKEN_LIFETIME_SECONDS" in line


def test_a_tightened_lifetime_shortens_the_default_token_too(seeded: Cli) -> None:
    # SISADA_DEV_TOKEN_TTL_SECONDS keeps its 12 h default; the gateway now takes 10 min.
    done = seeded.run("token", "police", SISADA_MAX_TOKEN_LIFETIME_SECONDS="600")
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 600


@pytest.mark.parametrize(("args", "expected"), [
    (("police", "--area", "Setiabudi"), "is not an area code"),
    (("police", "--area", SETIABUDI + ".1001"), "police tokens carry an area of level"),
    (("district", "--area", "31.74.99"), "the database has no such area"),
    (("auditor", "--area", SETIABUDI), "auditor tokens carry no area"),
    (("police", "--officer", "1"), "police tokens name no officer"),
    (("immigration_officer", "--officer", "999999"), "the database has no such officer"),
    (("immigration_officer", "--officer", "2"), "immigration_officer tokens name a field"),
    (("immigration_supervisor", "--officer", "1"), "tokens name a supervisor officer"),
    (("immigration_officer", "--officer", "-1"), "argument --officer"),
], ids=lambda value: value if isinstance(value, str) else "-".join(value))
def test_token_claims_the_gateway_would_refuse_are_refused(
    seeded: Cli, args: tuple[str, ...], expected: str,
) -> None:
    assert expected in one_line_error(seeded.run("token", *args), USAGE)


def test_token_without_the_demos_key_creates_none_and_says_where_it_looked(
    seeded: Cli, tmp_path: Path,
) -> None:
    elsewhere = Cli(tmp_path, seeded.env)
    line = one_line_error(elsewhere.run("token", "police"), FAILURE)
    assert f"no development signing key at {tmp_path.resolve() / '.sisada-dev-key'}" in line
    assert "SISADA_DEV_KEY_FILE" in line
    assert not (tmp_path / ".sisada-dev-key").exists()


def test_token_reads_the_key_named_by_the_setting(seeded: Cli, tmp_path: Path) -> None:
    elsewhere = Cli(tmp_path, {**seeded.env,
                               "SISADA_DEV_KEY_FILE": str(seeded.path / ".sisada-dev-key")})
    done = elsewhere.run("token", "police")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1


def test_token_where_tokens_come_from_an_identity_provider_is_refused(seeded: Cli) -> None:
    line = one_line_error(seeded.run("token", "police",
                                     SISADA_JWKS_URL="https://idp.example/jwks.json"), FAILURE)
    assert "SISADA_JWKS_URL" in line


def test_token_before_seed_says_to_seed(fresh: Cli) -> None:
    assert fresh.run("migrate").returncode == 0
    line = one_line_error(fresh.run("token", "immigration_officer",
                                    SISADA_JWT_SECRET=TEST_SECRET), FAILURE)
    assert "run `sisada seed`" in line


# -- help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    ("migrate",), ("seed",), ("serve",), ("token",), ("demo",), ("policy", "check"),
    ("policy", "matrix"), ("registry", "serve"), ("registry", "migrate"), ("trail",),
    ("trail", "verify"), ("trail", "prune"), ("trail", "export"),
], ids=" ".join)
def test_help_of_a_subcommand_says_what_it_does_and_its_defaults(
    tmp_path: Path, command: tuple[str, ...],
) -> None:
    result = Cli(tmp_path).run(*command, "--help")
    assert result.returncode == 0, result.stderr
    usage, _, rest = result.stdout.partition("\n\n")
    assert usage.startswith(f"usage: sisada {' '.join(command)}")
    assert rest.strip() and not rest.startswith("options:")  # a description comes first
    options = rest.split("options:", 1)[1]
    defaults = [line for line in options.splitlines() if "--" in line and "--help" not in line]
    if defaults:
        assert "default" in options


# -- demo ---------------------------------------------------------------------------------------


def test_demo_says_each_step_then_prints_the_tokens(tmp_path: Path) -> None:
    port, registry_port = free_port(), free_port()
    out, err = tmp_path / "demo.out", tmp_path / "demo.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SISADA_")}
        demo = subprocess.Popen(
            [SISADA, "demo", "--foreigners", "50", "--port", str(port),
             "--registry-port", str(registry_port)],
            cwd=tmp_path, env={**base, "SISADA_LOG_LEVEL": "WARNING"}, stdout=stdout,
            stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while "export TOKEN_" not in out.read_text() and demo.poll() is None:
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.2)
        steps = [line for line in err.read_text().splitlines() if line.startswith("demo: ")]
        assert [step.split(" ")[1] for step in steps] == [
            "migrating", "seeding", "seeded", "starting", "starting"], steps
        assert steps[1].startswith("demo: seeding 50 foreigners")
        assert "stand-in registry" in steps[3] and f":{port}" in steps[4]
        exports = [line for line in out.read_text().splitlines() if line.startswith("export ")]
        assert len(exports) == len(roles_with_tokens())
    finally:
        demo.terminate()
        demo.wait(timeout=20)
    # The registry it started went with it.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", registry_port)) != 0
    assert "Traceback" not in err.read_text()


def test_serve_with_a_policy_directory_without_policy_says_so(seeded: Cli, tmp_path: Path) -> None:
    result = seeded.run(*with_free_ports(("serve",)), SISADA_POLICY_DIR=str(tmp_path))
    line = one_line_error(result, FAILURE)
    assert line == (f"sisada serve: policy: no .polar files in {tmp_path} "
                    "(run `sisada policy check`)")


@pytest.mark.parametrize("args", [("trail", "export", "--foreigner", "abc"),
                                  ("trail", "prune", "--before", "yesterday"),
                                  ("nosuchcommand",), ("serve", "--port", "99999")],
                         ids=" ".join)
def test_a_malformed_argument_is_one_line_pointing_at_the_help(
    tmp_path: Path, args: tuple[str, ...],
) -> None:
    line = one_line_error(Cli(tmp_path).run(*args), USAGE)
    assert line.endswith("--help`)")
