"""A SISADA_* setting given wrong ends every `sisada` subcommand that reads the settings in
ONE stderr line naming the variable (never its value, which may be a secret) and exit 2,
never a traceback, in development and in production mode alike; and a reader that leaves
early (`sisada … | head -1`) ends a command quietly. Real processes of the installed
command, each in a directory of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.settings import Settings

SISADA = str(Path(sys.executable).parent / "sisada")
USAGE = 2
READER_LEFT = 141
ROOT = Path(__file__).resolve().parents[2]

# (variable, value, words of the message): each a mistake an operator makes.
MISTAKES = [
    ("SISADA_CORS_ALLOW_ORIGINS", '["https://a.example"', "not a JSON list"),
    ("SISADA_JWT_ALGORITHMS", "notjson", "names an unknown algorithm"),
    ("SISADA_JWT_ALGORITHMS", "[]", "at least 1 item"),
    ("SISADA_LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ("SISADA_REDIS_URL", "notaurl", "not a Redis URL"),
    ("SISADA_REDIS_URL", "redis://:hunter2-pw@cache:port/0", "not a Redis URL"),
    ("SISADA_RATE_LIMIT_PER_IP", "lots", "not a rate limit"),
    ("SISADA_RATE_LIMIT_SUBMIT_REPORT", "5/minute;often", "not a rate limit"),
    ("SISADA_PORT", "-1", "greater than or equal to 1"),
    ("SISADA_PORT", "0", "greater than or equal to 1"),
    ("SISADA_PORT", "65536", "less than or equal to 65535"),
    ("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/x", "not a directory"),
    ("SISADA_METRICS_TOKEN", "", "empty"),
    ("SISADA_METRICS_TOKEN", "   ", "empty"),
    ("SISADA_MAX_QUERY_DEPTH", "0", "greater than or equal to 1"),
    ("SISADA_MAX_BATCH_OPERATIONS", "0", "greater than or equal to 1"),
    ("SISADA_MAX_BODY_BYTES", "-1", "greater than or equal to 1"),
    ("SISADA_REQUEST_TIMEOUT_SECONDS", "0", "greater than 0"),
    ("SISADA_DEV_TOKEN_TTL_SECONDS", "-5", "greater than 0"),
]
# Every subcommand that reads the settings, as a user would type it.
# (The line names the subcommand, not its arguments: `sisada token: …`.)
COMMANDS = [("migrate",), ("seed",), ("serve",), ("token", "police"), ("schema",),
            ("policy", "check"), ("policy", "matrix"), ("demo",), ("registry", "migrate"),
            ("registry", "serve"), ("trail", "verify"), ("operations", "list")]


def run(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("SISADA_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.run([SISADA, *args], cwd=tmp, capture_output=True, text=True,
                          env={**base, "SISADA_LOG_LEVEL": "WARNING", **env}, timeout=120)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == USAGE, output
    assert result.stdout == "", output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(("variable", "value", "words"), MISTAKES,
                         ids=[f"{m[0]}={m[1]}" for m in MISTAKES])
def test_a_wrong_setting_is_one_line_naming_it_not_its_value(
        tmp_path: Path, variable: str, value: str, words: str) -> None:
    line = one_line_error(run(tmp_path, "serve", **{variable: value}))
    assert line.startswith(f"sisada serve: {variable}: "), line
    assert words in line
    if len(value.strip()) >= 2:  # "0" is in "greater than 0": nothing to hide there
        assert value not in line.removeprefix(f"sisada serve: {variable}: ")
    assert "hunter2" not in line
    # Refused before any work: no database file was made.
    assert not (tmp_path / "sisada.db").exists()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_subcommand_refuses_a_wrong_setting_in_one_line(
        tmp_path: Path, command: tuple[str, ...]) -> None:
    line = one_line_error(run(tmp_path, *command, SISADA_RATE_LIMIT_PER_IP="lots"))
    named = " ".join(command[:2] if command[0] in ("policy", "registry", "trail",
                                                    "operations") else command[:1])
    assert line == (f"sisada {named}: SISADA_RATE_LIMIT_PER_IP: not a rate limit "
                    "in the `limits` notation (e.g. 600/minute or 5/minute;30/hour)")


@pytest.mark.parametrize(("variable", "value"), [
    ("SISADA_LOG_LEVEL", "LOUD"), ("SISADA_CORS_ALLOW_ORIGINS", "[oops"),
    ("SISADA_METRICS_TOKEN", ""), ("SISADA_REDIS_URL", "notaurl")])
def test_a_wrong_setting_stays_one_line_in_production(
        tmp_path: Path, variable: str, value: str) -> None:
    line = one_line_error(run(tmp_path, "serve", SISADA_ENVIRONMENT="production",
                              SISADA_LOG_FORMAT="json", **{variable: value}))
    assert line.startswith(f"sisada serve: {variable}: ")


@pytest.mark.parametrize("value", ["https://a.example,https://b.example",
                                   '["https://a.example", "https://b.example"]'])
def test_cors_origins_are_a_json_list_or_comma_separated(
        value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Read as the CLI and the server read them: from the environment.
    monkeypatch.setenv("SISADA_CORS_ALLOW_ORIGINS", value)
    assert Settings().cors_allow_origins == ["https://a.example", "https://b.example"]


def test_cors_origins_given_comma_separated_reach_the_server(tmp_path: Path) -> None:
    """`sisada serve` with SISADA_CORS_ALLOW_ORIGINS=https://a.example answers that origin's
    preflight and no other's."""
    import signal
    import time

    import httpx
    from conftest import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SISADA_")}
    process = subprocess.Popen(
        [SISADA, "serve", "--migrate", "--port", str(port)], cwd=tmp_path,
        env={**env, "SISADA_LOG_LEVEL": "WARNING",
             "SISADA_CORS_ALLOW_ORIGINS": "https://a.example"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "sisada serve exited"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)

        def preflight(origin: str) -> httpx.Response:
            return httpx.options(f"{base}/graphql", timeout=10, headers={
                "Origin": origin, "Access-Control-Request-Method": "POST"})

        allowed = preflight("https://a.example")
        assert allowed.headers.get("access-control-allow-origin") == "https://a.example"
        other = preflight("https://evil.example")
        assert other.headers.get("access-control-allow-origin") is None
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- a reader that leaves early -----------------------------------------------------------------


def piped_to_a_closed_reader(tmp: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`sisada ARGS | head -0`: the reader is gone before the command writes."""
    read, write = os.pipe()
    os.close(read)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SISADA_")}
    try:
        return subprocess.run([SISADA, *args], cwd=tmp, stdout=write, stderr=subprocess.PIPE,
                              env={**base, "SISADA_LOG_LEVEL": "WARNING"}, timeout=120)
    finally:
        os.close(write)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipes")
    assert run(path, "migrate").returncode == 0
    client = run(path, "operations", "mode", "--client", "acme", "allow-list")
    assert client.returncode == 0, client.stderr
    return path


@pytest.mark.parametrize("command", [
    ("operations", "list"), ("policy", "matrix"), ("schema",),
    ("--help",), ("operations", "add", "--client", "acme", "op.graphql")], ids=" ".join)
def test_a_reader_that_leaves_early_ends_the_command_without_a_traceback(
        migrated: Path, command: tuple[str, ...]) -> None:
    (migrated / "op.graphql").write_text("query Ping { __typename }\n")
    done = piped_to_a_closed_reader(migrated, *command)
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    assert b"BrokenPipe" not in done.stderr, done.stderr.decode()
    # argparse's --help ignores a write error itself (and exits 0).
    expected = {0, READER_LEFT} if command == ("--help",) else {READER_LEFT}
    assert done.returncode in expected, done.stderr.decode()


def test_operations_add_into_head_registers_and_ends_quietly(migrated: Path) -> None:
    (migrated / "op.graphql").write_text("query Ping { __typename }\n")
    done = subprocess.run(
        f"'{SISADA}' operations add --client acme op.graphql | head -1; "
        f"'{SISADA}' operations list | head -0", shell=True, cwd=migrated,
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("SISADA_")})
    assert done.returncode == 0
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert len(done.stdout.splitlines()) == 1
    listed = run(migrated, "operations", "list")
    assert "Ping" in listed.stdout
