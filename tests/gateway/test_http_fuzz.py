"""Fuzzing /graphql over real HTTP: whatever arrives — random bytes, random JSON, wrong
content types and methods, odd headers, bodies around the size limit, deeply nested
variables, variables of the wrong type — the answer is never a 5xx, every error is JSON,
and the server still answers /healthz afterwards.

Hypothesis runs derandomized (the same examples every run) and bounded, so the suite stays
reproducible and quick. The gateway under test has its own small SQLite database (a fuzzed
mutation may write) and rate limits switched on but high, so the limiter parses every
request without refusing any."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import ServerThread, make_settings, run_async, run_in_thread
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app
from gateway.auth import mint_dev_token
from resolvers import migrate
from resolvers.seed import seed_database

MAX_BODY_BYTES = 16_384
ALLOWED_ORIGIN = "https://app.sisada.example"
FUZZ = settings(max_examples=200, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

DOCUMENTS = [
    "{ sisadaMe { role area officerId } }",
    "query($code: String!) { reportStatus(receiptCode: $code) { receiptCode status } }",
    "query($first: Int, $after: String) { foreigners(first: $first, after: $after) "
    "{ totalCount nodes { id fullName nationality residence { areaCode } } } }",
    "query($code: String!) { area(code: $code) { code name children { code } } }",
    "mutation($input: SubmitReportInput!) { submitReport(input: $input) { receiptCode } }",
    "mutation($input: UpdateReportInput!) { updateReport(input: $input) { id status } }",
    "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
    "{ __schema { types { name } } }",
    "subscription { activityRecorded { id } }",
    "{ nosuchfield }",
    "{",
    "",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "application/graphql",
    "application/graphql-response+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]

# What an HTTP client can put in a header value (no control characters, no outer spaces).
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                      max_size=80).map(str.strip)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@dataclass
class Target:
    base_url: str
    client: httpx.Client
    token: str

    def send(self, method: str, content: bytes | None = None,
             headers: dict[str, str] | None = None,
             params: dict[str, str] | None = None) -> httpx.Response:
        response = self.client.request(method, f"{self.base_url}/graphql", content=content,
                                       headers=headers or {}, params=params)
        check(response, method)
        return response


def check(response: httpx.Response, method: str) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json"), response.text
        if method != "HEAD":
            errors = response.json()["errors"]
            assert len(errors) == 1 and errors[0]["extensions"]["code"]
    assert "Traceback" not in response.text


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite+aiosqlite:///{tmp / 'sisada.db'}"
    run_in_thread(migrate.upgrade, url)

    async def seed() -> None:
        engine = create_async_engine(url)
        try:
            await seed_database(engine, foreigners=20)
        finally:
            await engine.dispose()

    run_async(seed())
    high = "100000/minute"
    config = make_settings(url, tmp, max_body_bytes=MAX_BODY_BYTES, rate_limits_enabled=True,
                           rate_limit_per_ip=high, rate_limit_per_principal=high,
                           rate_limit_submit_report=high, cors_allow_origins=[ALLOWED_ORIGIN])
    token = mint_dev_token(config, "immigration_officer", area="31.74", officer_id=1)
    with ServerThread(create_app(config)) as base_url, httpx.Client(timeout=30) as client:
        yield Target(base_url, client, token)
        health = client.get(f"{base_url}/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}


def nested(depth: int, leaf: str, as_list: bool) -> str:
    """JSON text nested `depth` levels deep (built as text: json.dumps would recurse)."""
    if as_list:
        return "[" * depth + leaf + "]" * depth
    return '{"a": ' * depth + leaf + "}" * depth


def assert_still_healthy(target: Target) -> None:
    response = target.client.get(f"{target.base_url}/healthz")
    assert response.status_code == 200


def test_random_bytes_never_5xx(target: Target) -> None:
    @FUZZ
    @given(body=st.binary(max_size=2048), content_type=st.sampled_from(CONTENT_TYPES),
           method=st.sampled_from(METHODS))
    def run(body: bytes, content_type: str, method: str) -> None:
        headers = {"content-type": content_type} if content_type else {}
        target.send(method, body, headers)

    run()
    assert_still_healthy(target)


def test_random_json_requests_never_5xx(target: Target) -> None:
    operation = st.fixed_dictionaries({}, optional={
        "query": st.sampled_from(DOCUMENTS) | st.text(max_size=200) | json_values,
        "variables": json_values,
        "operationName": st.none() | st.text(max_size=20) | json_values,
        "extensions": json_values,
    })
    body = operation | st.lists(operation, max_size=12) | json_values

    @FUZZ
    @given(body=body, authenticated=st.booleans())
    def run(body: Any, authenticated: bool) -> None:
        headers = {"content-type": "application/json"}
        if authenticated:
            headers["authorization"] = f"Bearer {target.token}"
        target.send("POST", json.dumps(body).encode(), headers)

    run()
    assert_still_healthy(target)


def test_wrong_variable_types_never_5xx(target: Target) -> None:
    @FUZZ
    @given(document=st.sampled_from(DOCUMENTS), name=st.sampled_from(
               ["code", "first", "after", "input", "r", "other"]),
           value=json_values, authenticated=st.booleans())
    def run(document: str, name: str, value: Any, authenticated: bool) -> None:
        headers = {"content-type": "application/json"}
        if authenticated:
            headers["authorization"] = f"Bearer {target.token}"
        body = {"query": document, "variables": {name: value}}
        target.send("POST", json.dumps(body).encode(), headers)

    run()
    assert_still_healthy(target)


def test_deeply_nested_variables_never_5xx(target: Target) -> None:
    @FUZZ
    @given(depth=st.integers(1, 3000), as_list=st.booleans(),
           document=st.sampled_from(DOCUMENTS[:7]), method=st.sampled_from(["GET", "POST"]))
    def run(depth: int, as_list: bool, document: str, method: str) -> None:
        variables = ('{"input": ' + nested(depth, '"x"', as_list)
                     + ', "r": ' + nested(depth, "1", as_list) + "}")
        if method == "GET":
            # Kept under the URL length uvicorn accepts (past it, uvicorn answers in plain
            # text before the gateway sees the request).
            variables = ('{"input": ' + nested(min(depth, 400), '"x"', as_list) + "}")
            target.send("GET", params={"query": document, "variables": variables})
        else:
            body = '{"query": ' + json.dumps(document) + ', "variables": ' + variables + "}"
            target.send("POST", body.encode(), {"content-type": "application/json"})

    run()
    assert_still_healthy(target)


def test_bodies_around_the_size_limit_never_5xx(target: Target) -> None:
    @FUZZ
    @given(size=st.integers(0, 3 * MAX_BODY_BYTES), chunked=st.booleans())
    def run(size: int, chunked: bool) -> None:
        prefix = b'{"query": "{ sisadaMe { role } }", "variables": {"p": "'
        body = prefix + b"x" * size + b'"}}'
        content: Any = body
        if chunked:
            content = iter([body[i:i + 4096] for i in range(0, len(body), 4096)])
        response = target.send("POST", content, {"content-type": "application/json"})
        expected = 413 if len(body) > MAX_BODY_BYTES else 200
        assert response.status_code == expected, response.text

    run()
    assert_still_healthy(target)


def test_random_headers_and_query_strings_never_5xx(target: Target) -> None:
    headers = st.dictionaries(
        st.sampled_from(["authorization", "origin", "accept", "content-type",
                         "access-control-request-method", "access-control-request-headers",
                         "x-forwarded-for", "content-encoding", "transfer-encoding-x"]),
        header_text, max_size=5)
    params = st.dictionaries(
        st.sampled_from(["query", "variables", "operationName", "extensions", "other"]),
        st.sampled_from(DOCUMENTS) | st.text(max_size=100), max_size=4)

    @FUZZ
    @given(method=st.sampled_from(METHODS), headers=headers, params=params,
           body=st.none() | st.binary(max_size=256))
    def run(method: str, headers: dict[str, str], params: dict[str, str],
            body: bytes | None) -> None:
        target.send(method, body, headers, params)

    run()
    assert_still_healthy(target)
