"""docker-compose.yml runs the whole system: two gateway replicas sharing PostgreSQL and
Redis, the stand-in registry, and Hive Gateway in front, each with a health check, started
in order. No container engine runs where the tests do, so Debian's `docker-compose config`
validates and resolves the file, and the test reads what it resolved."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {"SISADA_JWT_SECRET": "j" * 64, "SISADA_REGISTRY_TOKEN": "r" * 64}
SISADA_SERVICES = {"migrate", "registry", "gateway-1", "gateway-2"}


def _compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is not installed (scripts/test installs it)")
        pytest.skip("docker-compose is not installed (scripts/test installs it)")
    return found


def _config(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SISADA_")}
    return subprocess.run([_compose(), "config"], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    done = _config(**SECRETS)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_the_system_is_all_there(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == {"postgres", "redis", "hive-gateway",
                                         *SISADA_SERVICES}


def test_every_long_running_service_has_a_health_check(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        if name != "migrate":
            assert service.get("healthcheck", {}).get("test"), name


def test_replicas_share_postgresql_redis_and_the_registry(resolved: dict[str, Any]) -> None:
    one, two = (resolved["services"][n]["environment"] for n in ("gateway-1", "gateway-2"))
    assert one == two
    assert one["SISADA_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in one["SISADA_DATABASE_URL"]
    assert one["SISADA_REDIS_URL"] == "redis://redis:6379/0"
    assert one["SISADA_EVENT_BUS"] == "redis"
    assert one["SISADA_REGISTRY_URL"] == "http://registry:8001/graphql"
    assert one["SISADA_REGISTRY_TOKEN"] == SECRETS["SISADA_REGISTRY_TOKEN"]
    # Hive Gateway reaches both through one name (Docker's DNS answers with both).
    for name in ("gateway-1", "gateway-2"):
        assert "sisada" in resolved["services"][name]["networks"]["default"]["aliases"]


def test_services_start_in_order(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("registry", "gateway-1", "gateway-2"):
        assert (services[name]["depends_on"]["migrate"]["condition"]
                == "service_completed_successfully")
    for name in ("gateway-1", "gateway-2"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["registry"]["condition"] == "service_healthy"
    assert {n: d["condition"] for n, d in services["hive-gateway"]["depends_on"].items()} == {
        "gateway-1": "service_healthy", "gateway-2": "service_healthy"}


def test_per_ip_limits_trust_only_hive_gateway(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    address = services["hive-gateway"]["networks"]["default"]["ipv4_address"]
    for name in ("gateway-1", "gateway-2"):
        assert services[name]["environment"]["SISADA_TRUSTED_PROXIES"] == address


def test_hive_gateway_runs_the_tested_config_with_the_whole_schema(
        resolved: dict[str, Any]) -> None:
    """What compose mounts is what tests/federation/test_hive_proxy.py runs in front of a
    real gateway: the config, and the schema it validates against."""
    volumes = resolved["services"]["hive-gateway"]["volumes"]
    # Debian's docker-compose resolves each to "/abs/source:/target:ro".
    mounted = {Path(source).relative_to(ROOT).as_posix(): target
               for source, target, *_mode in (v.split(":") for v in volumes)}
    assert mounted == {"deploy/gateway.config.mjs": "/gateway/gateway.config.mjs",
                       "deploy/schema.graphql": "/gateway/schema.graphql"}
    config = (ROOT / "deploy" / "gateway.config.mjs").read_text()
    assert '"http://sisada:8000/graphql"' in config


def test_no_secret_default_the_secrets_are_required() -> None:
    done = _config()
    assert done.returncode != 0
    assert "SISADA_JWT_SECRET" in done.stderr or "SISADA_REGISTRY_TOKEN" in done.stderr


def test_replicas_stop_after_their_grace_period(resolved: dict[str, Any]) -> None:
    """Compose's stop timeout outlasts the gateway's grace period: requests in flight
    finish and sockets close with 1001 before anything is killed."""
    for name in ("gateway-1", "gateway-2"):
        service = resolved["services"][name]
        grace = float(service["environment"]["SISADA_SHUTDOWN_GRACE_SECONDS"])
        stop = service["stop_grace_period"]
        seconds = float(stop.rstrip("s")) if isinstance(stop, str) else float(stop)
        assert seconds > grace + 2, (name, stop, grace)


def test_replicas_pass_the_production_start_up_checks(
        resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped stack runs in production mode, and its settings are ones production
    accepts (no development key, GraphiQL or anonymous introspection)."""
    from gateway.production import check_start_up, development_defaults
    from gateway.settings import Settings

    environment = resolved["services"]["gateway-1"]["environment"]
    assert environment["SISADA_ENVIRONMENT"] == "production"
    for name in [n for n in os.environ if n.startswith("SISADA_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    check_start_up(settings)  # raises ProductionSettingsError on a refused default
    assert not [d for d in development_defaults(settings) if d.allow_setting]


def test_the_image_installs_the_locked_versions() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r requirements/base.txt" in dockerfile
    assert "pip install --no-cache-dir --no-deps ." in dockerfile
    assert (ROOT / "requirements" / "base.txt").is_file()
