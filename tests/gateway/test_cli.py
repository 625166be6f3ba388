"""The installed `sisada` command, run as a real process in a fresh working directory:
migrate, seed (once only), mint development tokens per role, and serve — a token printed
by `sisada token` is accepted by `sisada serve` started in the same directory."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from conftest import SETIABUDI, free_port

SEED_FOREIGNERS = 200


def _sisada_executable() -> str:
    beside_python = Path(sys.executable).parent / "sisada"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("sisada")
    if found is None:
        pytest.fail("the `sisada` console script is not installed")
    return found


@dataclass
class Workdir:
    """A working directory with its own SQLite database, and `sisada` run inside it."""

    path: Path
    env: dict[str, str]
    executable: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.executable, *args], cwd=self.path, env=self.env,
                              capture_output=True, text=True, timeout=120)

    def spawn(self, *args: str, log_name: str = "serve.log",
              **env: str) -> subprocess.Popen[bytes]:
        # Output goes to a file, not a pipe nobody drains (a full pipe would stall the server).
        with open(self.path / log_name, "wb") as log:
            return subprocess.Popen([self.executable, *args], cwd=self.path,
                                    env={**self.env, **env}, stdout=log,
                                    stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    path = tmp_path_factory.mktemp("cli")
    # No SISADA_* setting leaks in from the caller: only the database is configured, so
    # the CLI and the server fall back to the development key file in this directory.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SISADA_")}
    env["SISADA_DATABASE_URL"] = f"sqlite+aiosqlite:///{path / 'cli.db'}"
    env["SISADA_LOG_LEVEL"] = "WARNING"
    return Workdir(path=path, env=env, executable=_sisada_executable())


@pytest.fixture(scope="module")
def seeded(workdir: Workdir) -> Workdir:
    migrated = workdir.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    seeded = workdir.run("seed", "--foreigners", str(SEED_FOREIGNERS))
    assert seeded.returncode == 0, seeded.stderr
    return workdir


def _token(workdir: Workdir, *args: str) -> str:
    result = workdir.run("token", *args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return lines[0]


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def test_seed_writes_identity_to_the_registry_database_only(seeded: Workdir) -> None:
    office = sqlite3.connect(seeded.path / "cli.db")
    registry = sqlite3.connect(seeded.path / "registry.db")
    try:
        names = registry.execute("SELECT full_name FROM person").fetchall()
        assert len(names) == SEED_FOREIGNERS
        office_dump = "\n".join(office.iterdump())
    finally:
        office.close()
        registry.close()
    assert all(name not in office_dump for (name,) in names)


def test_migrate_and_seed_create_the_database(seeded: Workdir) -> None:
    assert (seeded.path / "cli.db").is_file()


def test_seed_creates_the_signing_key_token_and_serve_share(seeded: Workdir) -> None:
    # `sisada token` never creates a key: the seed leaves the one the server run here reads.
    key = seeded.path / ".sisada-dev-key"
    assert key.is_file()
    assert key.stat().st_mode & 0o777 == 0o600


def test_seed_says_what_it_seeded(workdir: Workdir, tmp_path: Path) -> None:
    other = Workdir(path=tmp_path, executable=workdir.executable,
                    env={**workdir.env, "SISADA_DATABASE_URL":
                         f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"})
    assert other.run("migrate").returncode == 0
    done = other.run("seed", "--foreigners", "20")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "seed: seeding 20 foreigners (office and registry) …"
    assert lines[1].startswith("seeded: 20 foreigners, ")
    assert done.stdout == ""


def test_seed_twice_fails_clearly(seeded: Workdir) -> None:
    again = seeded.run("seed", "--foreigners", "10")
    assert again.returncode != 0
    assert "already seeded" in again.stderr
    assert again.stdout == ""
    assert "Traceback" not in again.stderr


def test_migrate_again_is_harmless(seeded: Workdir) -> None:
    again = seeded.run("migrate")
    assert again.returncode == 0, again.stderr


def test_token_for_police_is_one_jwt_line(seeded: Workdir) -> None:
    claims = _claims(_token(seeded, "police"))
    assert claims["role"] == "police"
    assert claims["area"] == SETIABUDI
    assert "officer_id" not in claims


def test_token_for_neighbourhood_picks_an_rt_in_setiabudi(seeded: Workdir) -> None:
    claims = _claims(_token(seeded, "neighbourhood"))
    assert claims["role"] == "neighbourhood"
    assert claims["area"].startswith(SETIABUDI + ".")
    assert len(claims["area"].split(".")) == 6


def test_token_for_immigration_officer_carries_officer_id(seeded: Workdir) -> None:
    claims = _claims(_token(seeded, "immigration_officer"))
    assert claims["role"] == "immigration_officer"
    assert isinstance(claims["officer_id"], int)


def test_token_with_explicit_area(seeded: Workdir) -> None:
    claims = _claims(_token(seeded, "district", "--area", "31.74.01"))
    assert (claims["role"], claims["area"]) == ("district", "31.74.01")


def test_token_for_unknown_role_fails_on_stderr(seeded: Workdir) -> None:
    result = seeded.run("token", "nosuchrole")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "nosuchrole" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_for_anonymous_role_fails_on_stderr(seeded: Workdir) -> None:
    result = seeded.run("token", "public")
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip()


def _healthy(workdir: Workdir, process: subprocess.Popen[bytes], base_url: str,
             what: str, log_name: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            log = (workdir.path / log_name).read_text(errors="replace")
            pytest.fail(f"`{what}` exited with {process.returncode}: {log}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"`{what}` did not become healthy")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def served(seeded: Workdir) -> Iterator[str]:
    """`sisada registry serve` over the registry.db the seed wrote, and `sisada serve`
    pointed at it: two processes, as the README runs them."""
    credential = "cli-test-registry-credential-" + "c" * 16
    registry_port, port = free_port(), free_port()
    registry = seeded.spawn("registry", "serve", "--port", str(registry_port),
                            log_name="registry.log", SISADA_REGISTRY_TOKEN=credential)
    server = None
    base_url = f"http://127.0.0.1:{port}"
    try:
        _healthy(seeded, registry, f"http://127.0.0.1:{registry_port}", "sisada registry serve",
                 "registry.log")
        server = seeded.spawn(
            "serve", "--port", str(port), SISADA_REGISTRY_TOKEN=credential,
            SISADA_REGISTRY_URL=f"http://127.0.0.1:{registry_port}/graphql")
        _healthy(seeded, server, base_url, "sisada serve", "serve.log")
        yield base_url
    finally:
        for process in (server, registry):
            if process is not None:
                _stop(process)


def test_served_gateway_accepts_the_cli_token_as_police(seeded: Workdir, served: str) -> None:
    token = _token(seeded, "police")
    response = httpx.post(f"{served}/graphql", json={"query": "{ sisadaMe { role area } }"},
                          headers={"authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"sisadaMe": {"role": "police", "area": SETIABUDI}}}


def test_served_gateway_reads_the_seeded_data_as_immigration_officer(
    seeded: Workdir, served: str,
) -> None:
    token = _token(seeded, "immigration_officer")
    response = httpx.post(
        f"{served}/graphql",
        json={"query": "{ foreigners(first: 1) { totalCount nodes { fullName } } }"},
        headers={"authorization": f"Bearer {token}", "sisada-purpose": "field_check"},
        timeout=30)
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["foreigners"]["totalCount"] == SEED_FOREIGNERS
    assert body["data"]["foreigners"]["nodes"][0]["fullName"]


def test_served_gateway_rejects_a_token_from_another_key_as_police(served: str) -> None:
    forged = jwt.encode({"role": "police", "area": SETIABUDI, "iss": "sisada-dev",
                         "aud": "sisada", "exp": int(time.time()) + 600},
                        "some-other-secret-" + "x" * 32, algorithm="HS256")
    response = httpx.post(f"{served}/graphql", json={"query": "{ sisadaMe { role } }"},
                          headers={"authorization": f"Bearer {forged}"}, timeout=30)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
