"""SISADA_ENVIRONMENT=production: the gateway refuses to start with the development key,
GraphiQL or open introspection unless each is allowed by its own setting; in development
(and for what production allows) each development default in use is one warning at
start-up. Through create_app, a real server, and the real `sisada serve`."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from conftest import TEST_SECRET, ServerThread, free_port, make_settings, migrated_database

from gateway.app import create_app
from gateway.production import ProductionSettingsError
from gateway.settings import Settings

SISADA = str(Path(sys.executable).parent / "sisada")
USAGE = 2

# A production deployment without any development default that production refuses.
HARDENED: dict[str, Any] = {"environment": "production", "jwt_secret": TEST_SECRET,
                            "graphiql": False, "introspection": "authenticated"}

REFUSALS = [
    # (override of the hardened settings, the setting named, its allowance)
    ({"jwt_secret": None}, "SISADA_JWT_SECRET", "allow_dev_key_in_production"),
    ({"graphiql": True}, "SISADA_GRAPHIQL", "allow_graphiql_in_production"),
    ({"introspection": "on"}, "SISADA_INTROSPECTION", "allow_introspection_in_production"),
]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database("sqlite", tmp_path_factory.mktemp("production")) as url:
        yield url


def production(database: str, tmp: Path, **overrides: Any) -> Settings:
    return make_settings(database, tmp, **{**HARDENED, **overrides})


def warned_settings(caplog: pytest.LogCaptureFixture) -> set[str]:
    """The settings warned about: production logs JSON lines, development key=value."""
    messages = [r.getMessage() for r in caplog.records
                if "gateway.development_default" in r.getMessage()]
    return {orjson.loads(m)["setting"] if m.startswith("{")
            else m.split("setting='", 1)[1].split("'", 1)[0] for m in messages}


@pytest.mark.parametrize(("override", "setting", "allowance"), REFUSALS,
                         ids=[row[1] for row in REFUSALS])
def test_production_refuses_each_development_default(
    database: str, tmp_path: Path, override: dict[str, Any], setting: str, allowance: str,
) -> None:
    with pytest.raises(ProductionSettingsError) as refused:
        create_app(production(database, tmp_path, **override))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("SISADA_ENVIRONMENT=production refuses to start: ")
    assert f"{setting}:" in message
    assert f"SISADA_{allowance.upper()}=true" in message
    # Only the offending default is named.
    others = {row[1] for row in REFUSALS} - {setting}
    assert not any(f"{other}:" in message for other in others)


def test_production_names_every_refused_default_in_one_line(database: str, tmp_path: Path) -> None:
    with pytest.raises(ProductionSettingsError) as refused:
        create_app(production(database, tmp_path, jwt_secret=None, graphiql=True,
                              introspection="on"))
    message = str(refused.value)
    assert "\n" not in message
    assert all(f"{row[1]}:" in message for row in REFUSALS)
    assert TEST_SECRET not in message


@pytest.mark.parametrize(("override", "setting", "allowance"), REFUSALS,
                         ids=[row[1] for row in REFUSALS])
def test_production_starts_with_the_explicit_allowance_and_warns(
    database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    override: dict[str, Any], setting: str, allowance: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="sisada")
    app = create_app(production(database, tmp_path, **override, **{allowance: True}))
    assert setting in warned_settings(caplog)
    with ServerThread(app) as base:
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200


def test_hardened_production_starts(database: str, tmp_path: Path) -> None:
    with ServerThread(create_app(production(database, tmp_path))) as base:
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        introspection = {"query": "{ __schema { queryType { name } } }"}
        answer = httpx.post(f"{base}/graphql", json=introspection, timeout=10)
        assert answer.json()["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"


def test_development_warns_once_per_development_default(
    database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sisada")
    create_app(make_settings(database, tmp_path, jwt_secret=None, rate_limits_enabled=True,
                             cors_allow_origins=["*"]))
    messages = [r.getMessage() for r in caplog.records
                if "gateway.development_default" in r.getMessage()]
    assert warned_settings(caplog) == {
        "SISADA_JWT_SECRET", "SISADA_GRAPHIQL", "SISADA_INTROSPECTION", "SISADA_DATABASE_URL",
        "SISADA_REDIS_URL", "SISADA_REGISTRY_URL", "SISADA_METRICS_TOKEN",
        "SISADA_CORS_ALLOW_ORIGINS"}
    assert len(messages) == 8
    assert all("environment='development'" in m for m in messages)


def test_development_without_defaults_warns_about_none_of_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sisada")
    create_app(make_settings("postgresql+asyncpg://postgres@127.0.0.1:5432/unused", tmp_path,
                             graphiql=False, introspection="off", rate_limits_enabled=True,
                             redis_url="redis://127.0.0.1:1/0",
                             registry_url="http://127.0.0.1:1/graphql",
                             registry_token="service-credential",
                             metrics_token="scrape-credential"))
    assert warned_settings(caplog) == set()


def test_registry_without_a_token_is_warned(
    database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sisada")
    create_app(make_settings(database, tmp_path, registry_url="http://127.0.0.1:1/graphql"))
    assert "SISADA_REGISTRY_TOKEN" in warned_settings(caplog)
    assert "SISADA_REGISTRY_URL" not in warned_settings(caplog)


def test_sisada_serve_in_production_with_the_development_key_refuses_in_one_line(
    tmp_path: Path,
) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SISADA_")}
    env = {**base, "SISADA_LOG_LEVEL": "WARNING", "SISADA_ENVIRONMENT": "production",
           "SISADA_GRAPHIQL": "false", "SISADA_INTROSPECTION": "authenticated",
           "SISADA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'office.db'}",
           "SISADA_REGISTRY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"}
    result = subprocess.run([SISADA, "serve", "--migrate", "--port", str(free_port())],
                            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == USAGE, output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sisada serve: SISADA_ENVIRONMENT=production refuses to start: "
                               "SISADA_JWT_SECRET: ")
    assert "SISADA_ALLOW_DEV_KEY_IN_PRODUCTION=true" in lines[0]
    # Refused before anything was done: `--migrate` created no database.
    assert not (tmp_path / "office.db").exists()
