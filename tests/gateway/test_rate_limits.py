"""Rate limits over real HTTP: per client IP, per principal, counted by root field, and
hardest on receipt-code look-ups and the public report submission; in memory by default,
shared through Redis between replicas.

Each test starts its own gateway with low limits over one small seeded SQLite database.
Client IPs are told apart with X-Forwarded-For, which uvicorn trusts from 127.0.0.1 (its
`forwarded_allow_ips` default), as it would from a reverse proxy in production."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from conftest import (
    ServerThread,
    count_reports_with_text,
    free_port,
    make_settings,
    run_async,
    run_in_thread,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app
from gateway.auth import mint_dev_token
from gateway.settings import Settings
from resolvers import migrate
from resolvers.models import Residence
from resolvers.seed import seed_database

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
ME = "{ sisadaMe { role } }"
SUBMIT = """
mutation Submit($input: SubmitReportInput!) {
  submitReport(input: $input) { receiptCode status }
}
"""
# Far above anything a test sends, for the limits a test is not about.
HIGH = "1000/minute"


@dataclass
class Seeded:
    url: str
    rt_code: str


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('rate-limits') / 'sisada.db'}"
    run_in_thread(migrate.upgrade, url)

    async def seed() -> str:
        engine = create_async_engine(url)
        try:
            await seed_database(engine, foreigners=20)
            async with engine.connect() as conn:
                return str(await conn.scalar(select(Residence.rt_code).limit(1)))
        finally:
            await engine.dispose()

    return Seeded(url=url, rt_code=run_async(seed()))


@dataclass
class Gateway:
    base_url: str
    settings: Settings
    client: httpx.Client
    rt_code: str

    def token(self, subject: str, role: str = "police", area: str = "31.74.02") -> str:
        return mint_dev_token(self.settings, role, area=area, subject=subject)

    def post(self, body: Any, ip: str, token: str | None = None) -> httpx.Response:
        headers = {"x-forwarded-for": ip}
        if token:
            headers["authorization"] = f"Bearer {token}"
        return self.client.post(f"{self.base_url}/graphql", json=body, headers=headers)

    def query(self, ip: str, token: str | None = None) -> httpx.Response:
        return self.post({"query": ME}, ip, token)

    def submit(self, ip: str, text: str, token: str | None = None,
               query: str = SUBMIT) -> httpx.Response:
        variables = {"input": {"category": "SUSPICIOUS_ACTIVITY", "text": text,
                               "areaCode": self.rt_code}}
        return self.post({"query": query, "variables": variables}, ip, token)


@contextmanager
def gateway(seeded: Seeded, tmp: Path, **overrides: Any) -> Iterator[Gateway]:
    values = {"rate_limits_enabled": True, "rate_limit_per_ip": HIGH,
              "rate_limit_per_principal": HIGH, "rate_limit_submit_report": HIGH,
              "rate_limit_report_status": HIGH, **overrides}
    settings = make_settings(seeded.url, tmp, **values)
    with ServerThread(create_app(settings)) as base_url, httpx.Client(timeout=30) as client:
        yield Gateway(base_url, settings, client, seeded.rt_code)


def assert_rate_limited(response: httpx.Response, window_seconds: int = 60) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/json")
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["RATE_LIMITED"]
    assert 1 <= int(response.headers["retry-after"]) <= window_seconds


def assert_served(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body


def reports_with_text(seeded: Seeded, text: str) -> int:
    return count_reports_with_text(seeded.url, text)


def marker() -> str:
    return f"rate-limit-test-{uuid.uuid4().hex}"


# -- in memory ----------------------------------------------------------------------------


def test_per_ip_limit_as_public(seeded: Seeded, tmp_path: Path) -> None:
    with gateway(seeded, tmp_path, rate_limit_per_ip="3/minute") as gw:
        for _ in range(3):
            assert_served(gw.query("10.0.0.1"))
        assert_rate_limited(gw.query("10.0.0.1"))
        # Another client is counted on its own.
        assert_served(gw.query("10.0.0.2"))


def test_per_ip_limit_counts_every_operation_of_a_batch(seeded: Seeded, tmp_path: Path) -> None:
    with gateway(seeded, tmp_path, rate_limit_per_ip="3/minute") as gw:
        batch = gw.post([{"query": ME}] * 3, "10.0.0.1")
        assert batch.status_code == 200 and len(batch.json()) == 3
        assert_rate_limited(gw.query("10.0.0.1"))


def test_per_principal_limit_follows_the_token_across_ips_as_police(
        seeded: Seeded, tmp_path: Path) -> None:
    with gateway(seeded, tmp_path, rate_limit_per_principal="3/minute") as gw:
        token = gw.token("officer-a")
        for i in range(3):
            assert_served(gw.query(f"10.0.1.{i}", token))
        assert_rate_limited(gw.query("10.0.1.99", token))
        # Another principal, and the public, from the very same IP, still get through.
        assert_served(gw.query("10.0.1.99", gw.token("officer-b")))
        assert_served(gw.query("10.0.1.99"))


def test_public_callers_share_no_principal_budget(seeded: Seeded, tmp_path: Path) -> None:
    with gateway(seeded, tmp_path, rate_limit_per_principal="2/minute") as gw:
        # Anonymous callers have no subject: they are limited per IP only.
        for i in range(5):
            assert_served(gw.query(f"10.0.2.{i}"))


def test_submit_report_limit_per_ip_as_public(seeded: Seeded, tmp_path: Path) -> None:
    with gateway(seeded, tmp_path, rate_limit_submit_report="2/minute") as gw:
        for _ in range(2):
            assert_served(gw.submit("10.0.3.1", marker()))
        refused = marker()
        assert_rate_limited(gw.submit("10.0.3.1", refused))
        assert reports_with_text(seeded, refused) == 0
        # Reads are not report submissions; another IP has its own budget.
        assert_served(gw.query("10.0.3.1"))
        assert_served(gw.submit("10.0.3.2", marker()))


def test_submit_report_limit_follows_the_principal_as_rt_head(
        seeded: Seeded, tmp_path: Path) -> None:
    with gateway(seeded, tmp_path, rate_limit_submit_report="2/minute") as gw:
        token = gw.token("rt-head-1", role="neighbourhood", area=seeded.rt_code)
        assert_served(gw.submit("10.0.4.1", marker(), token))
        assert_served(gw.submit("10.0.4.2", marker(), token))
        assert_rate_limited(gw.submit("10.0.4.3", marker(), token))
        # The public at the head's own IP is counted by IP, not as the head.
        assert_served(gw.submit("10.0.4.1", marker()))


def test_aliased_submissions_count_one_each_as_public(seeded: Seeded, tmp_path: Path) -> None:
    aliased = """mutation Flood($input: SubmitReportInput!) {
      a: submitReport(input: $input) { receiptCode }
      b: submitReport(input: $input) { receiptCode }
      c: submitReport(input: $input) { receiptCode }
    }"""
    with gateway(seeded, tmp_path, rate_limit_submit_report="2/minute") as gw:
        text = marker()
        assert_rate_limited(gw.submit("10.0.5.1", text, query=aliased))
        assert reports_with_text(seeded, text) == 0


def test_submissions_through_fragments_are_counted_as_public(
        seeded: Seeded, tmp_path: Path) -> None:
    via_fragment = """mutation Submit($input: SubmitReportInput!) { ...S }
    fragment S on Mutation { ... on Mutation { submitReport(input: $input) { receiptCode } } }"""
    with gateway(seeded, tmp_path, rate_limit_submit_report="1/minute") as gw:
        assert_served(gw.submit("10.0.6.1", marker(), query=via_fragment))
        assert_rate_limited(gw.submit("10.0.6.1", marker(), query=via_fragment))


def test_submissions_in_a_batch_are_counted_as_public(seeded: Seeded, tmp_path: Path) -> None:
    with gateway(seeded, tmp_path, rate_limit_submit_report="2/minute") as gw:
        variables = {"input": {"category": "SUSPICIOUS_ACTIVITY", "text": marker(),
                               "areaCode": seeded.rt_code}}
        batch = [{"query": SUBMIT, "variables": variables}] * 3
        assert_rate_limited(gw.post(batch, "10.0.7.1"))


def test_the_name_in_a_string_or_comment_is_no_submission_as_public(
        seeded: Seeded, tmp_path: Path) -> None:
    mention = '{ reportStatus(receiptCode: "submitReport") { status } } # submitReport'
    with gateway(seeded, tmp_path, rate_limit_submit_report="1/minute") as gw:
        for _ in range(3):
            response = gw.post({"query": mention}, "10.0.8.1")
            assert response.status_code == 200, response.text


# -- what an attacker guesses with: root fields, and receipt-code look-ups (issue 8 §3) ----


def status_lookups(aliases: int) -> str:
    fields = " ".join(f'g{n}: reportStatus(receiptCode: "SSD-AAAA-AAAA-AAAA-{n:04d}") '
                      "{ status }" for n in range(aliases))
    return "{ " + fields + " }"


def test_aliased_root_fields_count_each_against_the_per_ip_limit_as_public(
        seeded: Seeded, tmp_path: Path) -> None:
    aliased = "{ " + " ".join(f"m{n}: sisadaMe {{ role }}" for n in range(5)) + " }"
    with gateway(seeded, tmp_path, rate_limit_per_ip="6/minute") as gw:
        assert_served(gw.post({"query": aliased}, "10.0.10.1"))
        assert_served(gw.query("10.0.10.1"))
        assert_rate_limited(gw.query("10.0.10.1"))
        assert_served(gw.query("10.0.10.2"))


def test_root_fields_of_a_batch_count_against_the_principal_as_police(
        seeded: Seeded, tmp_path: Path) -> None:
    two = "{ a: sisadaMe { role } b: sisadaMe { role } }"
    with gateway(seeded, tmp_path, rate_limit_per_principal="5/minute") as gw:
        token = gw.token("rate-limit-batch")
        assert_served(gw.post({"query": two}, "10.0.11.1", token))
        response = gw.post([{"query": two}, {"query": two}], "10.0.11.2", token)
        assert_rate_limited(response)


def test_the_flood_of_the_finding_is_refused_by_default_as_public(
        seeded: Seeded, tmp_path: Path) -> None:
    # 10 operations of 30 `reportStatus` aliases: 300 guesses in one request, which the
    # old limiter counted as 10. The shipped defaults refuse it outright.
    defaults = Settings()
    batch = [{"query": status_lookups(30)}] * 10
    with gateway(seeded, tmp_path, rate_limit_per_ip=defaults.rate_limit_per_ip,
                 rate_limit_report_status=defaults.rate_limit_report_status) as gw:
        response = gw.post(batch, "10.0.12.1")
        assert_rate_limited(response, window_seconds=86_400)  # beyond the hourly limit too
        assert b"SSD-" not in response.content
        assert_served(gw.post({"query": status_lookups(1)}, "10.0.12.1"))


def test_report_status_lookups_are_limited_per_ip_as_public(
        seeded: Seeded, tmp_path: Path) -> None:
    with gateway(seeded, tmp_path, rate_limit_report_status="3/minute") as gw:
        for _ in range(3):
            assert_served(gw.post({"query": status_lookups(1)}, "10.0.13.1"))
        response = gw.post({"query": status_lookups(1)}, "10.0.13.1")
        assert_rate_limited(response)
        assert response.json()["errors"][0]["message"] == "too many report status look-ups"
        assert_served(gw.post({"query": status_lookups(1)}, "10.0.13.2"))
        assert_served(gw.query("10.0.13.1"))  # other queries still pass


def test_aliased_and_fragment_lookups_count_one_each_as_public(
        seeded: Seeded, tmp_path: Path) -> None:
    via_fragment = """{ ...F ... on Query { b: reportStatus(receiptCode: "x") { status } } }
    fragment F on Query { a: reportStatus(receiptCode: "y") { status } }"""
    with gateway(seeded, tmp_path, rate_limit_report_status="3/minute") as gw:
        assert_served(gw.post({"query": via_fragment}, "10.0.14.1"))
        assert_rate_limited(gw.post({"query": via_fragment}, "10.0.14.1"))
        assert_rate_limited(gw.post({"query": status_lookups(4)}, "10.0.14.2"))


def test_report_status_lookups_count_per_ip_with_a_token_too_as_police(
        seeded: Seeded, tmp_path: Path) -> None:
    with gateway(seeded, tmp_path, rate_limit_report_status="2/minute") as gw:
        one, two = gw.token("rate-limit-lookups-1"), gw.token("rate-limit-lookups-2")
        assert_served(gw.post({"query": status_lookups(1)}, "10.0.15.1", one))
        assert_served(gw.post({"query": status_lookups(1)}, "10.0.15.1", two))
        assert_rate_limited(gw.post({"query": status_lookups(1)}, "10.0.15.1", one))


def test_report_status_over_get_is_counted_as_public(seeded: Seeded, tmp_path: Path) -> None:
    with gateway(seeded, tmp_path, rate_limit_report_status="2/minute") as gw:
        url = f"{gw.base_url}/graphql"
        headers = {"x-forwarded-for": "10.0.16.1"}
        params = {"query": status_lookups(2)}
        assert gw.client.get(url, params=params, headers=headers).status_code == 200
        assert_rate_limited(gw.client.get(url, params=params, headers=headers))


def test_limits_can_be_switched_off(seeded: Seeded, tmp_path: Path) -> None:
    with gateway(seeded, tmp_path, rate_limits_enabled=False,
                 rate_limit_per_ip="1/minute") as gw:
        for _ in range(3):
            assert_served(gw.query("10.0.9.1"))


# -- Redis --------------------------------------------------------------------------------


@contextmanager
def replicas(seeded: Seeded, tmp: Path, count: int, **overrides: Any) -> Iterator[list[Gateway]]:
    with ExitStack() as stack:
        yield [stack.enter_context(gateway(seeded, tmp / f"replica-{i}", **overrides))
               for i in range(count)]


def test_replicas_share_the_per_ip_count_through_redis(
        seeded: Seeded, tmp_path: Path, redis_prefix: str) -> None:
    redis_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    with replicas(seeded, tmp_path, 2, redis_url=redis_url, rate_limit_key_prefix=redis_prefix,
                  rate_limit_per_ip="4/minute") as (a, b):
        assert_served(a.query("10.1.0.1"))
        assert_served(b.query("10.1.0.1"))
        assert_served(a.query("10.1.0.1"))
        assert_served(b.query("10.1.0.1"))
        assert_rate_limited(a.query("10.1.0.1"))
        assert_rate_limited(b.query("10.1.0.1"))
        assert_served(b.query("10.1.0.2"))
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        assert list(client.scan_iter(match=f"{redis_prefix}*")), "the counts live in Redis"
    finally:
        client.close()


def test_replicas_share_the_submit_report_count_through_redis(
        seeded: Seeded, tmp_path: Path, redis_prefix: str) -> None:
    redis_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    with replicas(seeded, tmp_path, 2, redis_url=redis_url, rate_limit_key_prefix=redis_prefix,
                  rate_limit_submit_report="1/minute") as (a, b):
        assert_served(a.submit("10.1.1.1", marker()))
        refused = marker()
        assert_rate_limited(b.submit("10.1.1.1", refused))
        assert reports_with_text(seeded, refused) == 0


def test_redis_down_fails_open_for_queries_and_closed_for_reports(
        seeded: Seeded, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sisada")
    nobody_listens = f"redis://127.0.0.1:{free_port()}/0"
    with gateway(seeded, tmp_path, redis_url=nobody_listens, rate_limit_per_ip="1/minute") as gw:
        # Queries are served, unlimited, while the counter store is away...
        assert_served(gw.query("10.2.0.1"))
        assert_served(gw.query("10.2.0.1"))
        # ...but the public report submission is refused until it is back.
        text = marker()
        response = gw.submit("10.2.0.1", text)
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNAVAILABLE"]
        assert int(response.headers["retry-after"]) > 0
        assert reports_with_text(seeded, text) == 0
        # ...and so are receipt-code look-ups: guessing is what a flood would do.
        lookup = gw.post({"query": status_lookups(1)}, "10.2.0.1")
        assert lookup.status_code == 503, lookup.text
        assert [e["extensions"]["code"] for e in lookup.json()["errors"]] == ["UNAVAILABLE"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("rate_limit.storage_unavailable" in message for message in warnings), warnings
    assert not any(nobody_listens in message for message in warnings)
