"""Per-IP limits see the client's address, not one it claims: a real `sisada serve` believes
`X-Forwarded-For` only from the proxies named in SISADA_TRUSTED_PROXIES (a hostile review
made 25 receipt-code look-ups in a row by forging the header from 127.0.0.1, which uvicorn
alone trusts) — with one worker and with several, and under the old name
SISADA_FORWARDED_ALLOW_IPS too. Routers in front of the gateway: tests/federation."""

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
REDIS_URL = "redis://127.0.0.1:6379/0"


@contextlib.contextmanager
def serving(deployment: Deployment, tmp: Path, *args: str, **extra: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "SISADA_DATABASE_URL": deployment.database_url,
           "SISADA_JWT_SECRET": TEST_SECRET, "SISADA_DEV_KEY_FILE": str(tmp / "dev-key"),
           "SISADA_RATE_LIMIT_REPORT_STATUS": "3/minute"}
    for name in ("SISADA_REDIS_URL", "SISADA_TRUSTED_PROXIES", "SISADA_FORWARDED_ALLOW_IPS",
                 "FORWARDED_ALLOW_IPS"):
        env.pop(name, None)
    env.update(extra)
    process = subprocess.Popen([str(SISADA), "serve", "--port", str(port), *args], env=env,
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


def test_a_forged_forwarded_for_does_not_escape_the_limit_with_workers(
        deployment: Deployment, tmp_path_factory: pytest.TempPathFactory,
        redis_prefix: str) -> None:
    # uvicorn's workers re-read their options in each process: none may fall back to
    # trusting 127.0.0.1. Redis holds the count so that every worker sees the same one.
    with serving(deployment, tmp_path_factory.mktemp("workers"), "--workers", "2",
                 SISADA_REDIS_URL=REDIS_URL,
                 SISADA_RATE_LIMIT_KEY_PREFIX=redis_prefix) as base_url:
        statuses = _statuses(base_url, 4)
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429


def test_a_named_proxy_is_believed(deployment: Deployment,
                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    with serving(deployment, tmp_path_factory.mktemp("proxy"),
                 SISADA_TRUSTED_PROXIES="127.0.0.1") as base_url:
        statuses = _statuses(base_url, 4)
    assert statuses == [200, 200, 200, 200]


def test_a_proxy_named_by_the_old_setting_is_believed(
        deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> None:
    with serving(deployment, tmp_path_factory.mktemp("old-name"),
                 SISADA_FORWARDED_ALLOW_IPS="127.0.0.1") as base_url:
        statuses = _statuses(base_url, 4)
    assert statuses == [200, 200, 200, 200]


def test_sisada_serve_refuses_an_oversized_websocket_message_at_the_server(
    deployment: Deployment, tmp_path: Path,
) -> None:
    """`sisada serve` hands the message limit to uvicorn, which refuses a larger frame
    itself (close 1009) rather than buffering up to its own 16 MiB default first; a
    message within the limit is still answered."""
    import asyncio

    from ws_client import FeedClient

    async def exchange(base_url: str) -> tuple[dict[str, object], int | None, str]:
        async with FeedClient(base_url) as small:
            acknowledged = await small.init()
            # The client offers permessage-deflate (websockets does by default); the
            # server declines it: a zlib pair per socket costs more than live feeds save.
            assert small.ws is not None and small.ws.response is not None
            assert "sec-websocket-extensions" not in small.ws.response.headers
        async with FeedClient(base_url) as large:
            await large.send({"type": "connection_init", "payload": {"pad": "x" * 200_000}})
            code = await large.closed_with()
            assert large.ws is not None
            return acknowledged, code, large.ws.close_reason or ""

    with serving(deployment, tmp_path, SISADA_WS_MAX_MESSAGE_BYTES="2048") as base_url:
        acknowledged, code, reason = asyncio.run(exchange(base_url))
    assert acknowledged == {"type": "connection_ack"}
    assert code == 1009
    # The WebSocket library's own refusal, not the application's after reading it whole.
    assert "2048" in reason and "exceeds" in reason, reason
