"""GET /metrics (Prometheus) after real requests through the real server: requests by
operation, role and code, redactions by Type.field, policy reloads, trail writes, the
registry's calls and circuit, SQL and the pool, live sockets and subscriptions — with no
document, identity value or area code anywhere in the scrape; a token when configured;
and one total across the workers of `sisada serve --workers 2`.

The metrics of one process are shared by every gateway the suite runs in it, so each test
compares a scrape before with one after its requests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import PURPOSE, TEST_SECRET, Deployment, ServerThread, free_port
from prometheus_client.parser import text_string_to_metric_families
from ws_client import FeedClient

from gateway.app import create_app

SISADA = Path(sys.executable).with_name("sisada")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

POLICE_LIST = ("query MetricsPoliceList { foreigners(first: 3) { nodes { id nationality "
               "fullName } } }")
OFFICER_LIST = ("query MetricsOfficerList { foreigners(first: 3) { nodes { id fullName "
                "passportNumber residence { areaCode } } } }")
FORBIDDEN_AS_PUBLIC = "query MetricsForbidden { reports(first: 1) { nodes { id } } }"
FEED = "subscription MetricsFeed { activityRecorded { eventId } }"


def scrape(base_url: str, token: str | None = None) -> tuple[bytes, Samples]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{base_url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.content, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Summed over every label not named."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def grown(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def _post(deployment: Deployment, query: str, persona: str, **variables: Any) -> dict[str, Any]:
    response = deployment.post(query, persona, variables or None)
    assert response.status_code == 200, response.text
    return response.json()


def codes_of(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


# -- requests, redactions, trail, registry, SQL ----------------------------------------------


def test_requests_are_counted_by_operation_role_and_code(deployment: Deployment) -> None:
    _raw, before = scrape(deployment.base_url)
    for _ in range(2):
        body = _post(deployment, POLICE_LIST, "setiabudi_police")
        nodes = body["data"]["foreigners"]["nodes"]
        assert nodes and all(node["fullName"] is None for node in nodes)
        assert "fullName" in body["extensions"]["redacted"]["Foreigner"]
    officer = _post(deployment, OFFICER_LIST, "immigration_officer")
    assert "errors" not in officer and officer["data"]["foreigners"]["nodes"][0]["fullName"]
    assert codes_of(_post(deployment, FORBIDDEN_AS_PUBLIC, "public")) == ["FORBIDDEN"]
    assert "errors" not in _post(deployment, "{ __typename }", "auditor")
    assert codes_of(_post(deployment, "query MetricsBroken {", "auditor")) == [
        "GRAPHQL_PARSE_FAILED"]
    _raw, after = scrape(deployment.base_url)

    requests = "sisada_graphql_requests_total"
    assert grown(before, after, requests, operation="MetricsPoliceList", role="police",
                 code="OK") == 2
    assert grown(before, after, requests, operation="MetricsOfficerList",
                 role="immigration_officer", code="OK") == 1
    # The public's new name takes no label (anyone could use them all up): "other".
    assert grown(before, after, requests, operation="other", role="public",
                 code="FORBIDDEN") == 1
    assert not any("MetricsForbidden" in str(labels) for _n, labels in after)
    assert grown(before, after, requests, operation="anonymous", role="auditor",
                 code="OK") == 1
    # A document that does not parse names no operation: its name is never a label.
    assert grown(before, after, requests, operation="other", role="auditor",
                 code="GRAPHQL_PARSE_FAILED") == 1
    assert not any("MetricsBroken" in str(labels) for _n, labels in after)

    execution = "sisada_graphql_execution_seconds_count"
    assert grown(before, after, execution, operation="MetricsPoliceList") == 2
    http = "sisada_http_request_duration_seconds_count"
    assert value(after, http) - value(before, http) >= 6
    assert grown(before, after, "sisada_http_responses_total", status="200") >= 6
    # Once per operation and Type.field, however many records it hid in: 2, not 6.
    redactions = "sisada_redactions_total"
    assert grown(before, after, redactions, field="Foreigner.fullName") == 2
    assert grown(before, after, redactions, field="Foreigner.passportNumber") == 0

    # The officer's names came from the registry and went into the trail.
    assert grown(before, after, "sisada_trail_writes_total", outcome="ok") >= 1
    assert grown(before, after, "sisada_trail_writes_total", outcome="failed") == 0
    assert grown(before, after, "sisada_upstream_requests_total", upstream="registry",
                 outcome="ok") >= 1
    assert grown(before, after, "sisada_upstream_request_seconds_count",
                 upstream="registry") >= 1
    assert value(after, "sisada_upstream_circuit_state", upstream="registry",
                 state="closed") >= 1
    # At least a statement per list read (none for FORBIDDEN, __typename or the broken one).
    assert (value(after, "sisada_sql_statement_seconds_count")
            - value(before, "sisada_sql_statement_seconds_count")) >= 3
    # Read at scrape time: the scrape itself holds no connection.
    assert value(after, "sisada_db_pool_connections_in_use") == 0
    assert ("sisada_db_pool_connections_in_use", frozenset()) in after


def test_the_scrape_holds_no_document_identity_or_area_code(deployment: Deployment) -> None:
    officer = _post(deployment, OFFICER_LIST, "immigration_officer")
    nodes = officer["data"]["foreigners"]["nodes"]
    secrets = {node["fullName"] for node in nodes} | {node["passportNumber"] for node in nodes}
    number = nodes[0]["passportNumber"]
    # The number as a literal of the document, and as a variable.
    checked = _post(deployment, f'query MetricsCheck {{ checkForeigner(documentNumber: '
                                f'"{number}") {{ registered }} }}', "immigration_officer")
    assert checked["data"]["checkForeigner"]["registered"] is True
    _post(deployment, "query MetricsCheckVar($n: String!) { checkForeigner(documentNumber: $n) "
                      "{ registered } }", "immigration_officer", n=number)
    areas = _post(deployment, 'query MetricsAreas { areas(parentCode: "31.74.02") { code } }',
                  "immigration_officer")
    assert areas["data"]["areas"]
    _post(deployment, FORBIDDEN_AS_PUBLIC, "public")
    raw, _samples = scrape(deployment.base_url)

    assert secrets and all(secret and secret.encode() not in raw for secret in secrets)
    # Area codes: a label would quote one; a number never has two dots.
    assert not re.search(rb"31\.74\.\d", raw)
    assert b'"31.74' not in raw
    assert b"checkForeigner(" not in raw and b"documentNumber" not in raw
    assert deployment.token("immigration_officer").encode() not in raw


def _named(base_url: str, name: str, token: str | None = None,
           operation_name: str | None = None, status: int = 200) -> None:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body: dict[str, Any] = {"query": f"query {name} {{ __typename }}"}
    if operation_name is not None:
        body["operationName"] = operation_name
    response = httpx.post(f"{base_url}/graphql", json=body, headers=headers, timeout=30)
    assert response.status_code == status, response.text


def test_operation_names_are_capped_and_only_callers_with_a_token_take_a_label(
        deployment: Deployment, tmp_path: Path) -> None:
    app = create_app(deployment.settings_with(tmp_path, metrics_max_operation_names=2))
    police = deployment.token("setiabudi_police")
    long_name = "MetricsCap" + "X" * 100
    with ServerThread(app) as base_url:
        _raw, before = scrape(base_url)
        _named(base_url, "MetricsCapPublic")  # the public's new name: no label of its own
        for name in (long_name, "MetricsCapSecond", "MetricsCapThird", "MetricsCapFourth"):
            _named(base_url, name, police)
        _named(base_url, "MetricsCapSecond")  # the public's name that holds a label
        raw, after = scrape(base_url)
    requests = "sisada_graphql_requests_total"
    # Longer than 64 characters: not a label, not even cut.
    assert b"MetricsCapXXXX" not in raw and b"MetricsCapPublic" not in raw
    assert grown(before, after, requests, operation="MetricsCapSecond", role="police",
                 code="OK") == 1
    assert grown(before, after, requests, operation="MetricsCapThird", role="police",
                 code="OK") == 1
    assert grown(before, after, requests, operation="MetricsCapSecond", role="public",
                 code="OK") == 1
    # Past the cap: "other".
    assert b"MetricsCapFourth" not in raw
    assert grown(before, after, requests, operation="other", role="police", code="OK") == 2
    assert grown(before, after, requests, operation="other", role="public", code="OK") == 1


def test_the_public_cannot_use_up_the_operation_labels_as_police(
        deployment: Deployment, tmp_path: Path) -> None:
    app = create_app(deployment.settings_with(tmp_path))  # the default: 100 names
    with ServerThread(app) as base_url:
        for i in range(101):
            _named(base_url, f"MetricsFlood{i}")
        _named(base_url, "MetricsExpiredPermits", deployment.token("setiabudi_police"))
        raw, _after = scrape(base_url)
    assert b'operation="MetricsExpiredPermits",role="police"' in raw
    assert b"MetricsFlood" not in raw


def test_an_operation_name_the_document_does_not_hold_is_no_label_as_police(
        deployment: Deployment, tmp_path: Path) -> None:
    app = create_app(deployment.settings_with(tmp_path))
    with ServerThread(app) as base_url:
        _raw, before = scrape(base_url)
        _named(base_url, "MetricsHeld", deployment.token("setiabudi_police"),
               operation_name="lookup TT9958386 Sato Kazuki", status=400)
        raw, after = scrape(base_url)
    # Refused (400) before it runs: neither the name sent nor the document's is a label.
    assert b"TT9958386" not in raw and b"MetricsHeld" not in raw
    assert grown(before, after, "sisada_http_responses_total", status="400") == 1


# -- policy reloads ---------------------------------------------------------------------------




def test_policy_reloads_are_counted_by_outcome(
        editable_gateway: tuple[str, Any, Path]) -> None:
    base_url, app, policy_dir = editable_gateway
    _raw, before = scrape(base_url)
    broken = policy_dir / "broken.polar"
    broken.write_text('readable(role, "Foreigner" if and;')
    assert app.state.sisada.reload_policy() is False
    broken.unlink()
    assert app.state.sisada.reload_policy() is True
    assert app.state.sisada.reload_policy() is True
    _raw, after = scrape(base_url)
    assert grown(before, after, "sisada_policy_reloads_total", outcome="failed") == 1
    assert grown(before, after, "sisada_policy_reloads_total", outcome="ok") == 2


# -- live feeds -------------------------------------------------------------------------------


async def _gauges_reach(base_url: str, sockets: float, subscriptions: float) -> Samples:
    deadline = time.monotonic() + 10
    while True:
        _raw, samples = await asyncio.to_thread(scrape, base_url)
        now = (value(samples, "sisada_websockets_open"),
               value(samples, "sisada_subscriptions_active"))
        if now == (sockets, subscriptions):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"sockets, subscriptions = {now}, expected "
                                 f"{(sockets, subscriptions)}")
        await asyncio.sleep(0.05)


async def test_open_sockets_and_subscriptions_are_gauged(deployment: Deployment) -> None:
    _raw, samples = await asyncio.to_thread(scrape, deployment.base_url)
    sockets = value(samples, "sisada_websockets_open")
    subscriptions = value(samples, "sisada_subscriptions_active")
    async with FeedClient(deployment.base_url) as client:
        ack = await client.init(deployment.token("immigration_supervisor"), purpose=PURPOSE)
        assert ack == {"type": "connection_ack"}
        await _gauges_reach(deployment.base_url, sockets + 1, subscriptions)
        await client.subscribe(FEED)
        await _gauges_reach(deployment.base_url, sockets + 1, subscriptions + 1)
        async with FeedClient(deployment.base_url) as second:
            await second.init(deployment.token("immigration_supervisor"), purpose=PURPOSE)
            await second.subscribe(FEED)
            await _gauges_reach(deployment.base_url, sockets + 2, subscriptions + 2)
    await _gauges_reach(deployment.base_url, sockets, subscriptions)


# -- the token --------------------------------------------------------------------------------


def test_a_metrics_token_guards_the_scrape(deployment: Deployment, tmp_path: Path) -> None:
    token = "metrics-" + "m" * 32
    app = create_app(deployment.settings_with(tmp_path, metrics_token=token))
    with ServerThread(app) as base_url:
        missing = httpx.get(f"{base_url}/metrics")
        wrong = httpx.get(f"{base_url}/metrics", headers={"authorization": "Bearer nope"})
        # A GraphQL token is no metrics token.
        graphql = httpx.get(f"{base_url}/metrics", headers={
            "authorization": f"Bearer {deployment.token('immigration_supervisor')}"})
        basic = httpx.get(f"{base_url}/metrics", headers={"authorization": f"Basic {token}"})
        raw, samples = scrape(base_url, token)
        # The GraphQL endpoint is not behind the metrics token.
        assert httpx.post(f"{base_url}/graphql",
                          json={"query": "{ __typename }"}).status_code == 200
    for response in (missing, wrong, graphql, basic):
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert b"sisada_" not in response.content
    assert b"# TYPE sisada_graphql_requests_total counter" in raw
    assert samples


def test_metrics_are_open_without_a_token_and_need_no_graphql_token(
        deployment: Deployment) -> None:
    response = httpx.get(f"{deployment.base_url}/metrics")
    assert response.status_code == 200
    assert b"sisada_http_request_duration_seconds_bucket" in response.content
    assert httpx.post(f"{deployment.base_url}/metrics").status_code == 405


def test_a_flood_of_scrapes_is_answered_and_the_gateway_keeps_serving(
        deployment: Deployment) -> None:
    def one(_i: int) -> httpx.Response:
        return httpx.get(f"{deployment.base_url}/metrics", timeout=30)

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(one, range(64)))
    for response in responses:
        assert response.status_code in (200, 503), response.status_code
        if response.status_code == 503:
            assert response.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
            assert response.headers["retry-after"] == "1"
    assert any(response.status_code == 200 for response in responses)
    assert "errors" not in _post(deployment, "{ __typename }", "public")


# -- several workers --------------------------------------------------------------------------


@contextlib.contextmanager
def serving(deployment: Deployment, tmp: Path, *args: str, **extra: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "SISADA_DATABASE_URL": deployment.database_url,
           "SISADA_JWT_SECRET": TEST_SECRET, "SISADA_DEV_KEY_FILE": str(tmp / "dev-key"),
           "SISADA_RATE_LIMITS_ENABLED": "false", "SISADA_LOG_LEVEL": "warning"}
    for name in ("SISADA_REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "SISADA_METRICS_TOKEN"):
        env.pop(name, None)
    env.update(extra)
    log = (tmp / "serve.log").open("wb")
    process = subprocess.Popen([str(SISADA), "serve", "--port", str(port), *args], env=env,
                               stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("sisada serve did not start: "
                                   + (tmp / "serve.log").read_text(errors="replace"))
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _requests_by_worker(directory: Path, operation: str) -> dict[str, float]:
    """What each worker's own file holds (prometheus-client's multiprocess files)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    found = {}
    for path in directory.glob("counter_*.db"):
        count = 0.0
        for family in MultiProcessCollector.merge([str(path)], accumulate=False):
            for sample in family.samples:
                if (sample.name == "sisada_graphql_requests_total"
                        and sample.labels.get("operation") == operation):
                    count += sample.value
        found[path.name] = count
    return found


@pytest.mark.parametrize("where", ["serve's own", "operator's"])
def test_workers_add_up_in_one_scrape(deployment: Deployment, tmp_path: Path,
                                      where: str) -> None:
    query = {"query": "query MetricsWorkers { __typename }"}
    temp = tmp_path / "tmp"
    temp.mkdir()
    if where == "operator's":
        directory = tmp_path / "metrics"
        directory.mkdir()
        extra = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    else:
        # `sisada serve` makes a directory of its own (found here through TMPDIR).
        extra = {"TMPDIR": str(temp)}

    # A caller with a token: the public's names take no label of their own.
    headers = {"authorization": f"Bearer {deployment.token('setiabudi_police')}"}

    def one(_i: int) -> int:
        # A connection each, so the kernel hands them to either worker.
        with httpx.Client(timeout=30) as client:
            return client.post(f"{base_url}/graphql", json=query, headers=headers).status_code

    with serving(deployment, tmp_path, "--workers", "2", **extra) as base_url:
        if where != "operator's":
            [directory] = temp.glob("sisada-metrics-*")
        sent = 0
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(8) as pool:
            while True:
                statuses = list(pool.map(one, range(16)))
                assert statuses == [200] * 16
                sent += 16
                by_worker = _requests_by_worker(directory, "MetricsWorkers")
                if sum(1 for count in by_worker.values() if count) >= 2:
                    break
                assert time.monotonic() < deadline, by_worker
        assert sum(by_worker.values()) == sent
        # Whichever worker answers the scrape, it counts every worker's requests.
        for _ in range(4):
            _raw, samples = scrape(base_url)
            assert value(samples, "sisada_graphql_requests_total", operation="MetricsWorkers",
                         role="police", code="OK") == sent
            assert value(samples, "sisada_graphql_execution_seconds_count",
                         operation="MetricsWorkers") == sent
            assert total(samples, "sisada_http_request_duration_seconds_count") >= sent
    # A directory `sisada serve` made is removed with it; the operator's is kept.
    assert directory.exists() == (where == "operator's")
