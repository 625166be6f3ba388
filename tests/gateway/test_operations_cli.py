"""`sisada operations` and `sisada token --client` as a partner's operator runs them: real
processes of the installed command over real SQLite files and PostgreSQL databases. Every
mistake is one line on stderr and a documented exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import pytest
from conftest import TEST_SECRET, migrated_database

SISADA = str(Path(sys.executable).parent / "sisada")
FAILURE, USAGE = 1, 2
DOCUMENT = "query Nationalities { foreigners(first: 2) { nodes { id nationality } } }\n"


@dataclass
class Cli:
    path: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SISADA_")}
        return subprocess.run([SISADA, *args], cwd=self.path, capture_output=True, text=True,
                              env={**base, "SISADA_LOG_LEVEL": "WARNING", **self.env, **env},
                              timeout=120)


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == code, output
    assert result.stdout == "", output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    with migrated_database(request.param, tmp_path) as url:
        yield Cli(tmp_path, {"SISADA_DATABASE_URL": url})


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "nationalities.graphql"
    path.write_text(DOCUMENT)
    return path


def test_a_missing_file_is_a_usage_error(migrated: Cli) -> None:
    migrated.run("operations", "mode", "--client", "acme", "open")
    line = one_line_error(migrated.run("operations", "add", "--client", "acme",
                                       "nowhere.graphql"), USAGE)
    assert line == "sisada operations add: there is no file nowhere.graphql"


@pytest.mark.parametrize(("text", "says"), [
    ("{ foreigners(first: ", "not a GraphQL document: Syntax Error"),
    ("{ foreigners(first: 2) { nodes { nope } } }", "Cannot query field 'nope'"),
    ("fragment F on Foreigner { id }", "holds no operation"),
    ("{ foreigners(first: 2) { " + " ".join(f"a{i}: id" for i in range(40)) + " } }",
     "[TOO_MANY_ALIASES]"),
])
def test_a_document_the_gateway_would_refuse_is_not_registered(
        migrated: Cli, tmp_path: Path, text: str, says: str) -> None:
    assert migrated.run("operations", "mode", "--client", "acme", "allow-list").returncode == 0
    path = tmp_path / "bad.graphql"
    path.write_text(text)
    line = one_line_error(migrated.run("operations", "add", "--client", "acme", str(path)),
                          FAILURE)
    assert line.startswith(f"sisada operations add: {path}: ") and says in line
    assert "0 operations" in migrated.run("operations", "list").stdout


def test_a_document_larger_than_the_limit_is_refused(migrated: Cli, tmp_path: Path) -> None:
    migrated.run("operations", "mode", "--client", "acme", "open")
    path = tmp_path / "large.graphql"
    path.write_text("#" + "x" * 2000 + "\n" + DOCUMENT)
    result = migrated.run("operations", "add", "--client", "acme", str(path),
                          SISADA_MAX_DOCUMENT_BYTES="1000")
    assert "SISADA_MAX_DOCUMENT_BYTES" in one_line_error(result, FAILURE)


def test_an_unknown_client_says_how_to_create_it(migrated: Cli, document: Path) -> None:
    for args in (("add", "--client", "nobody", str(document)), ("list", "--client", "nobody"),
                 ("remove", "--client", "nobody", "--all")):
        line = one_line_error(migrated.run("operations", *args), FAILURE)
        assert line.endswith("unknown client nobody: create it with `sisada operations mode "
                             "--client nobody allow-list|open`")


def test_a_malformed_client_name_is_a_usage_error(migrated: Cli, document: Path) -> None:
    line = one_line_error(migrated.run("operations", "add", "--client", "Acme Corp",
                                       str(document)), USAGE)
    assert "a client name is" in line


def test_remove_needs_a_hash_it_knows(migrated: Cli, document: Path) -> None:
    migrated.run("operations", "mode", "--client", "acme", "open")
    assert migrated.run("operations", "add", "--client", "acme", str(document)).returncode == 0
    assert "HASH is a SHA-256" in one_line_error(
        migrated.run("operations", "remove", "--client", "acme", "abc"), USAGE)
    assert "has no operation 00000000" in one_line_error(
        migrated.run("operations", "remove", "--client", "acme", "00000000"), FAILURE)
    one_line_error(migrated.run("operations", "remove", "--client", "acme"), USAGE)


def test_before_migrate_it_says_to_migrate(tmp_path: Path, document: Path) -> None:
    cli = Cli(tmp_path, {"SISADA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/office.db"})
    line = one_line_error(cli.run("operations", "list"), FAILURE)
    assert "run `sisada migrate` first" in line
    # A database at an older revision (before the operations tables) is not migrated either.
    from conftest import run_in_thread

    from resolvers import migrate

    run_in_thread(migrate.upgrade, f"sqlite+aiosqlite:///{tmp_path}/office.db", "0007")
    line = one_line_error(cli.run("operations", "add", "--client", "acme", str(document)),
                          FAILURE)
    assert "this version needs" in line and "sisada migrate" in line


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    cli = Cli(tmp_path, {"SISADA_DATABASE_URL":
                         f"postgresql+asyncpg://sisada:pw@127.0.0.1:{_closed_port()}/x"})
    line = one_line_error(cli.run("operations", "list"), FAILURE)
    assert "SISADA_DATABASE_URL=" in line and "pw" not in line


def test_list_shows_clients_modes_and_operations(migrated: Cli, document: Path) -> None:
    assert migrated.run("operations", "list").stdout.startswith("no clients")
    created = migrated.run("operations", "mode", "--client", "acme", "allow-list")
    assert created.stdout.startswith("client acme created: allow-list")
    assert "within 5 s" in created.stdout
    migrated.run("operations", "mode", "--client", "zeta", "open")
    migrated.run("operations", "add", "--client", "acme", str(document))
    listed = migrated.run("operations", "list").stdout.splitlines()
    assert listed[0] == "acme (allow-list): 1 operation"
    digest, added, names = listed[1].split()
    assert len(digest) == 64 and added.endswith("Z") and names == "Nationalities"
    assert listed[2] == "zeta (open): 0 operations"
    switched = migrated.run("operations", "mode", "--client", "acme", "open")
    assert switched.stdout.startswith("client acme set: open")
    assert migrated.run("operations", "list", "--client", "acme").stdout.startswith(
        "acme (open): 1 operation")


@pytest.mark.parametrize("command", [
    ("operations",), ("operations", "add"), ("operations", "list"), ("operations", "remove"),
    ("operations", "mode"),
], ids=" ".join)
def test_help_says_what_each_subcommand_does(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = Cli(tmp_path).run(*command, "--help")
    assert result.returncode == 0, result.stderr
    usage, _, rest = result.stdout.partition("\n\n")
    assert usage.startswith(f"usage: sisada {' '.join(command)}")
    assert rest.strip() and not rest.startswith("options:")


def test_token_carries_the_client_claim(tmp_path: Path) -> None:
    cli = Cli(tmp_path, {"SISADA_JWT_SECRET": TEST_SECRET})
    result = cli.run("token", "auditor", "--client", "acme-mobile")
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
    assert claims["client"] == "acme-mobile"
    line = one_line_error(cli.run("token", "auditor", "--client", "ACME!"), USAGE)
    assert "a client name is" in line
    assert "--client" in cli.run("token", "--help").stdout


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
