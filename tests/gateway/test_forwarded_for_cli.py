"""Per-IP limits see the client's address, not one it claims: a real `sisada serve` believes
`X-Forwarded-For` only from the proxies named in SISADA_FORWARDED_ALLOW_IPS (a hostile
review made 25 receipt-code look-ups in a row by forging the header from 127.0.0.1,
which uvicorn alone trusts)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import TEST_SECRET, Deployment, free_port

SISADA = Path(sys.executable).with_name("sisada")
LOOKUP = {"query": '{ reportStatus(receiptCode: "SSD-AAAA-AAAA-AAAA-AAAA") { status } }'}


@contextlib.contextmanager
def serving(deployment: Deployment, tmp: Path, **extra: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "SISADA_DATABASE_URL": deployment.database_url,
           "SISADA_JWT_SECRET": TEST_SECRET, "SISADA_DEV_KEY_FILE": str(tmp / "dev-key"),
           "SISADA_RATE_LIMIT_REPORT_STATUS": "3/minute", **extra}
    env.pop("SISADA_REDIS_URL", None)
    env.pop("FORWARDED_ALLOW_IPS", None)
    process = subprocess.Popen([str(SISADA), "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("sisada serve did not start")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=15)


def _statuses(base_url: str, count: int) -> list[int]:
    return [httpx.post(f"{base_url}/graphql", json=LOOKUP,
                       headers={"x-forwarded-for": f"203.0.113.{i + 1}"}).status_code
            for i in range(count)]


def test_a_forged_forwarded_for_does_not_escape_the_limit(
        deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> None:
    with serving(deployment, tmp_path_factory.mktemp("no-proxy")) as base_url:
        statuses = _statuses(base_url, 4)
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429


def test_a_named_proxy_is_believed(deployment: Deployment,
                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    with serving(deployment, tmp_path_factory.mktemp("proxy"),
                 SISADA_FORWARDED_ALLOW_IPS="127.0.0.1") as base_url:
        statuses = _statuses(base_url, 4)
    assert statuses == [200, 200, 200, 200]
