"""HTTP hygiene over real HTTP: every malformed request gets a 4xx whose body is one JSON
GraphQL error with a stable code, nothing runs, and nothing internal leaks.

Huge bodies are 413 PAYLOAD_TOO_LARGE (counted as they stream, whatever Content-Length says);
POST bodies other than application/json are 415 UNSUPPORTED_MEDIA_TYPE (the CSRF defence:
those are what a cross-site form can send without a preflight); bad JSON, bad UTF-8, wrong
shapes, null bytes and deep nesting are 400 BAD_REQUEST; mutations over GET and methods
other than GET and POST are 405 METHOD_NOT_ALLOWED with `Allow`. CORS answers the
allow-listed origins only."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Deployment, ServerThread, count_reports_with_text

from gateway.app import create_app

ME = "{ sisadaMe { role } }"
JSON = {"content-type": "application/json"}
SUBMIT = """
mutation Submit($input: SubmitReportInput!) {
  submitReport(input: $input) { receiptCode status }
}
"""
ALLOWED_ORIGIN = "https://app.sisada.example"
OTHER_ORIGIN = "https://evil.example"


def url(deployment: Deployment) -> str:
    return f"{deployment.base_url}/graphql"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == [code]
    assert "data" not in body
    return body


def post_raw(deployment: Deployment, content: Any, headers: dict[str, str] | None = None
             ) -> httpx.Response:
    return deployment.client.post(url(deployment), content=content,
                                  headers=JSON if headers is None else headers)


def reports_with_text(deployment: Deployment, text: str) -> int:
    return count_reports_with_text(deployment.database_url, text)


# -- size ---------------------------------------------------------------------------------


def test_body_over_the_limit_is_413(deployment: Deployment) -> None:
    padding = "x" * (deployment.settings.max_body_bytes + 1)
    body = json.dumps({"query": ME, "variables": {"padding": padding}})
    response = post_raw(deployment, body)
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_chunked_body_over_the_limit_is_413_without_content_length(
        deployment: Deployment) -> None:
    limit = deployment.settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        yield b'{"query": "{ sisadaMe { role } }", "variables": {"padding": "'
        for _ in range(limit // 8192 + 2):
            yield b"x" * 8192
        yield b'"}}'

    # A generator is sent chunked: the server cannot trust a length it was never told.
    response = post_raw(deployment, chunks())
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_body_just_under_the_limit_is_served(deployment: Deployment) -> None:
    body = json.dumps({"query": ME, "variables": {}})
    body = body[:-2] + ' ' * (deployment.settings.max_body_bytes - len(body) - 10) + '}}'
    response = post_raw(deployment, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"sisadaMe": {"role": "public"}}}


# -- media types (CSRF) ---------------------------------------------------------------------


def test_form_urlencoded_post_is_415(deployment: Deployment) -> None:
    response = deployment.client.post(url(deployment), data={"query": ME})
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_multipart_post_is_415(deployment: Deployment) -> None:
    response = deployment.client.post(url(deployment), files={"operations": ("o", b"{}")})
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_text_plain_post_is_415(deployment: Deployment) -> None:
    response = post_raw(deployment, json.dumps({"query": ME}), {"content-type": "text/plain"})
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_post_without_content_type_is_415(deployment: Deployment) -> None:
    response = post_raw(deployment, json.dumps({"query": ME}), {})
    assert "content-type" not in response.request.headers
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_json_in_another_charset_is_415(deployment: Deployment) -> None:
    response = post_raw(deployment, json.dumps({"query": ME}),
                        {"content-type": "application/json; charset=latin-1"})
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_json_with_utf8_charset_is_served(deployment: Deployment) -> None:
    response = post_raw(deployment, json.dumps({"query": ME}),
                        {"content-type": "application/json; charset=UTF-8"})
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"sisadaMe": {"role": "public"}}}


# -- malformed bodies ---------------------------------------------------------------------


def test_malformed_json_is_400(deployment: Deployment) -> None:
    assert_error(post_raw(deployment, b'{"query": "{ sisadaMe { role } }"'), 400, "BAD_REQUEST")


def test_empty_body_is_400(deployment: Deployment) -> None:
    assert_error(post_raw(deployment, b""), 400, "BAD_REQUEST")


def test_invalid_utf8_is_400(deployment: Deployment) -> None:
    body = b'{"query": "{ sisadaMe { role } }", "operationName": "\xff\xfe"}'
    assert_error(post_raw(deployment, body), 400, "BAD_REQUEST")


@pytest.mark.parametrize("body", ["42", '"{ sisadaMe { role } }"', "null", "true"])
def test_json_body_that_is_not_an_object_is_400(deployment: Deployment, body: str) -> None:
    assert_error(post_raw(deployment, body), 400, "BAD_REQUEST")


def test_batch_of_non_objects_is_400(deployment: Deployment) -> None:
    assert_error(post_raw(deployment, json.dumps([{"query": ME}, 1])), 400, "BAD_REQUEST")


def test_empty_batch_is_400(deployment: Deployment) -> None:
    assert_error(post_raw(deployment, "[]"), 400, "BAD_REQUEST")


def test_query_that_is_not_a_string_is_400(deployment: Deployment) -> None:
    response = post_raw(deployment, json.dumps({"query": {"sisadaMe": "role"}}))
    assert_error(response, 400, "BAD_REQUEST")


def test_variables_that_are_not_an_object_is_400(deployment: Deployment) -> None:
    response = post_raw(deployment, json.dumps({"query": ME, "variables": [1, 2]}))
    assert_error(response, 400, "BAD_REQUEST")


def test_null_byte_in_the_query_is_400(deployment: Deployment) -> None:
    response = post_raw(deployment, json.dumps({"query": "{ sisadaMe { role } }\u0000"}))
    assert_error(response, 400, "BAD_REQUEST")


def test_null_byte_in_a_get_query_is_400(deployment: Deployment) -> None:
    response = deployment.client.get(url(deployment), params={"query": "{ sisadaMe\x00 { role } }"})
    assert_error(response, 400, "BAD_REQUEST")


def test_deeply_nested_variables_are_400(deployment: Deployment) -> None:
    nested: Any = "x"
    for _ in range(deployment.settings.max_json_depth + 1):
        nested = [nested]
    response = post_raw(deployment, json.dumps(
        {"query": "query($ids: [ID!]) { sisadaMe { role } }", "variables": {"ids": nested}}))
    assert_error(response, 400, "BAD_REQUEST")


def test_json_nested_past_the_parser_limit_is_400(deployment: Deployment) -> None:
    response = post_raw(deployment, '{"query": "{ sisadaMe { role } }", "variables": {"v": '
                        + "[" * 5000 + "]" * 5000 + "}}")
    assert_error(response, 400, "BAD_REQUEST")


def test_deeply_nested_get_variables_are_400(deployment: Deployment) -> None:
    variables = '{"v": ' + "[" * 100 + "]" * 100 + "}"
    response = deployment.client.get(url(deployment), params={"query": ME,
                                                              "variables": variables})
    assert_error(response, 400, "BAD_REQUEST")


def test_malformed_get_variables_are_400(deployment: Deployment) -> None:
    response = deployment.client.get(url(deployment), params={"query": ME, "variables": "{"})
    assert_error(response, 400, "BAD_REQUEST")


def test_missing_query_is_a_json_400(deployment: Deployment) -> None:
    # Strawberry's own refusal, in JSON like ours.
    assert_error(post_raw(deployment, json.dumps({"variables": {}})), 400, "BAD_REQUEST")


def test_batch_over_the_limit_is_a_json_400(deployment: Deployment) -> None:
    batch = [{"query": ME}] * (deployment.settings.max_batch_operations + 1)
    assert_error(post_raw(deployment, json.dumps(batch)), 400, "BAD_REQUEST")


def test_wrong_variable_type_is_a_graphql_error(deployment: Deployment) -> None:
    # A well-formed request whose variables do not fit: GraphQL's own error, not a crash.
    body = deployment.gql('query($code: String!) { reportStatus(receiptCode: $code) { status } }',
                          "public", code={"not": "a string"})
    assert body.get("data") is None
    assert len(body["errors"]) == 1


# -- methods ------------------------------------------------------------------------------


def test_mutation_over_get_is_405_and_writes_nothing(deployment: Deployment) -> None:
    text = f"sisada-hardening-test-{uuid.uuid4().hex}"
    variables = {"input": {"category": "SUSPICIOUS_ACTIVITY", "text": text,
                           "areaCode": deployment.facts.busiest_setiabudi_rt}}
    response = deployment.client.get(url(deployment), params={
        "query": SUBMIT, "variables": json.dumps(variables)})
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"
    assert reports_with_text(deployment, text) == 0


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(deployment: Deployment, method: str) -> None:
    response = deployment.client.request(method, url(deployment), json={"query": ME})
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET, POST"


def test_query_over_get_still_works(deployment: Deployment) -> None:
    response = deployment.client.get(url(deployment), params={"query": ME})
    assert response.status_code == 200
    assert response.json() == {"data": {"sisadaMe": {"role": "public"}}}


# -- nothing leaks ------------------------------------------------------------------------


def test_error_responses_leak_nothing_as_police(deployment: Deployment) -> None:
    token = deployment.token("setiabudi_police")
    assert token
    auth = {"authorization": f"Bearer {token}"}
    bad_requests = [
        ("POST", {**auth, **JSON}, b'{"query": '),
        ("POST", {**auth, **JSON}, b'{"query": "\xc3\x28"}'),
        ("POST", {**auth, **JSON}, b"[1]"),
        ("POST", {**auth, "content-type": "text/plain"}, b'{"query": "{ sisadaMe { role } }"}'),
        ("POST", {**auth, **JSON}, b'{"query": "{ sisadaMe { role } }", "variables": '
         + b"[" * 2000 + b"]" * 2000 + b"}"),
        ("POST", {**auth, **JSON}, json.dumps({"query": "x" * 300_000}).encode()),
        ("PUT", {**auth, **JSON}, b"{}"),
    ]
    for method, headers, content in bad_requests:
        response = deployment.client.request(method, url(deployment), headers=headers,
                                             content=content)
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/json")
        text = response.text
        for secret in (token, "Traceback", 'File "', ".py", "/work", "SELECT", "sqlite",
                       "asyncpg", "orjson", "strawberry", "starlette"):
            assert secret not in text, (secret, text)


# -- CORS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cors_base_url(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[str]:
    settings = deployment.settings_with(tmp_path_factory.mktemp("cors"),
                             cors_allow_origins=[ALLOWED_ORIGIN])
    with ServerThread(create_app(settings)) as base_url:
        yield base_url


def test_allowed_origin_gets_cors_headers(deployment: Deployment, cors_base_url: str) -> None:
    response = deployment.client.post(f"{cors_base_url}/graphql", json={"query": ME},
                                      headers={"origin": ALLOWED_ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "Origin" in response.headers["vary"]


def test_other_origin_gets_no_cors_headers(deployment: Deployment, cors_base_url: str) -> None:
    response = deployment.client.post(f"{cors_base_url}/graphql", json={"query": ME},
                                      headers={"origin": OTHER_ORIGIN})
    assert "access-control-allow-origin" not in response.headers


def test_no_origin_is_allowed_by_default(deployment: Deployment) -> None:
    response = deployment.client.post(url(deployment), json={"query": ME},
                                      headers={"origin": ALLOWED_ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_preflight_from_allowed_origin_allows_token_and_json(
        deployment: Deployment, cors_base_url: str) -> None:
    response = deployment.client.options(f"{cors_base_url}/graphql", headers={
        "origin": ALLOWED_ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    })
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed


def test_preflight_from_other_origin_is_refused_in_json(
        deployment: Deployment, cors_base_url: str) -> None:
    response = deployment.client.options(f"{cors_base_url}/graphql", headers={
        "origin": OTHER_ORIGIN, "access-control-request-method": "POST"})
    assert_error(response, 400, "BAD_REQUEST")
    assert "access-control-allow-origin" not in response.headers


def test_preflight_for_another_method_is_refused(
        deployment: Deployment, cors_base_url: str) -> None:
    response = deployment.client.options(f"{cors_base_url}/graphql", headers={
        "origin": ALLOWED_ORIGIN, "access-control-request-method": "DELETE"})
    assert_error(response, 400, "BAD_REQUEST")


def test_errors_are_readable_by_an_allowed_origin(
        deployment: Deployment, cors_base_url: str) -> None:
    response = deployment.client.post(f"{cors_base_url}/graphql", content=b"{",
                                      headers={**JSON, "origin": ALLOWED_ORIGIN})
    assert_error(response, 400, "BAD_REQUEST")
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


# -- numbers past Python's own limit --------------------------------------------------------

HUGE = "9" * 5000  # past Python's 4,300-digit limit for int(): a ValueError, not GraphQL's


@pytest.mark.parametrize("document", [
    f"query S($x: Int = {HUGE}) {{ sisadaMe {{ role }} }}",
    f"{{ foreigners(first: {HUGE}) {{ totalCount }} }}",
    f"{{ sisadaMe {{ role }} ...on Query {{ activities(first: {HUGE}) {{ totalCount }} }} }}",
], ids=["variable-default", "argument", "in-a-fragment"])
def test_a_number_too_long_to_parse_is_the_callers_mistake_as_public(
    deployment: Deployment, document: str,
) -> None:
    response = deployment.client.post(url(deployment), json={"query": document}, headers=JSON)
    body = response.json()
    codes = {error["extensions"]["code"] for error in body["errors"]}
    assert "INTERNAL_SERVER_ERROR" not in codes and "errorId" not in response.text, body
    assert codes <= {"GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"}, body
    assert response.status_code in (200, 400)
    messages = [error["message"] for error in body["errors"]]
    assert "Expected value of type 'Int!', found a value it cannot parse." in messages \
        or "Expected value of type 'Int', found a value it cannot parse." in messages, messages
    assert HUGE[:100] not in response.text and "sys." not in response.text


def test_a_variable_too_long_to_parse_is_the_callers_mistake_as_public(
    deployment: Deployment,
) -> None:
    response = post_raw(deployment, '{"query": "query($n: Int) { foreigners(first: $n) '
                        '{ totalCount } }", "variables": {"n": ' + HUGE + '}}')
    assert response.status_code == 400 or "errors" in response.json(), response.text
    assert "INTERNAL_SERVER_ERROR" not in response.text and "errorId" not in response.text


# -- the log of a request full of mistakes --------------------------------------------------


def test_many_mistakes_in_one_request_are_one_line_per_code_as_public(
    deployment: Deployment, caplog: pytest.LogCaptureFixture,
) -> None:
    # 2,000 representations the gateway cannot resolve: 2,000 errors in the answer (each
    # its own), but the log says so once, with the count and the first path.
    with caplog.at_level(logging.INFO, logger="sisada.graphql"):
        body = deployment.gql("query($r: [_Any!]!) { _entities(representations: $r) "
                              "{ __typename } }", "public", r=["x"] * 2000)
    codes = [error["extensions"]["code"] for error in body["errors"]]
    assert len(codes) == 2000 and set(codes) == {"BAD_USER_INPUT"}, codes[:3]
    lines = [r.getMessage() for r in caplog.records
             if r.name == "sisada.graphql" and "graphql.error" in r.getMessage()]
    assert len(lines) == 1, lines[:3]
    # (Console or JSON, whichever format the process was configured with last.)
    assert "2000" in lines[0] and "BAD_USER_INPUT" in lines[0] and "_entities" in lines[0]
