"""Persisted operations through real HTTP (issue 12, §3): Automatic Persisted Queries as
Apollo's clients speak them (POST and GET), stored in-process or shared through Redis, and
partner clients on an allow-list registered with `sisada operations` (a real subprocess),
on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from conftest import SETIABUDI, Deployment, ServerThread, run_async
from ws_client import FeedClient

from gateway.app import create_app
from gateway.auth import mint_dev_token
from gateway.settings import Settings
from policies import CompiledPolicy

SISADA = str(Path(sys.executable).parent / "sisada")
REDIS_URL = "redis://127.0.0.1:6379/0"
POLICE = ("police", SETIABUDI)


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def unique_query(fields: str = "id nationality") -> str:
    """A document no other test sent (a fresh operation name), so a fresh hash."""
    return f"query Q{uuid.uuid4().hex} {{ foreigners(first: 3) {{ nodes {{ {fields} }} }} }}"


def persisted(document: str | None = None, digest: str | None = None) -> dict[str, Any]:
    digest = digest or sha256(document or "")
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def police_token(settings: Settings, client: str | None = None) -> str:
    return mint_dev_token(settings, "police", area=SETIABUDI, client=client)


def post(base_url: str, token: str | None, body: Any, **headers: str) -> httpx.Response:
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.post(f"{base_url}/graphql", json=body, headers=headers, timeout=30)


def get(base_url: str, token: str | None, params: dict[str, str],
        accept: str = "application/json") -> httpx.Response:
    headers = {"accept": accept}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.get(f"{base_url}/graphql", params=params, headers=headers, timeout=30)


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def nodes(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert "errors" not in body, body
    return body["data"]["foreigners"]["nodes"]


# -- Automatic Persisted Queries ------------------------------------------------------------


def test_an_unknown_hash_is_persisted_query_not_found(deployment: Deployment) -> None:
    token = police_token(deployment.settings)
    response = post(deployment.base_url, token, {"extensions": persisted(unique_query())})
    assert response.status_code == 200  # what Apollo's clients expect before they retry
    body = response.json()
    assert codes(body) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert body["errors"][0]["message"] == "PersistedQueryNotFound"
    assert "data" not in body or body["data"] is None
    # Never kept by a cache, like every /graphql answer (Apollo Server says `private,
    # no-cache`; its clients read the error, not the header).
    assert response.headers.get_list("cache-control") == ["no-store"]


def test_not_found_stays_200_for_clients_of_the_newer_media_type(
        deployment: Deployment) -> None:
    """Apollo's clients accept application/graphql-response+json, where a request that
    never ran is a 400; the APQ miss is their signal to send the document, so it stays 200."""
    response = post(deployment.base_url, None, {"extensions": persisted(unique_query())},
                    accept="application/graphql-response+json, application/json;q=0.9")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/graphql-response+json")
    assert codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_a_persisted_mutation_never_runs_over_get(deployment: Deployment) -> None:
    document = (f"mutation M{uuid.uuid4().hex} {{ submitReport(input: "
                "{category: SUSPICIOUS_ACTIVITY, text: \"apq-get-test\", "
                f"areaCode: \"{deployment.facts.busiest_setiabudi_rt}\"}}) {{ receiptCode }} }}")
    registered = post(deployment.base_url, None,
                      {"query": document, "extensions": persisted(document)})
    assert registered.status_code == 200
    assert registered.json()["data"]["submitReport"]["receiptCode"], registered.text
    response = get(deployment.base_url, None, {"extensions": json.dumps(persisted(document))})
    assert response.status_code == 405
    assert codes(response.json()) == ["METHOD_NOT_ALLOWED"]


def test_a_registered_document_runs_by_hash_over_post_and_get(deployment: Deployment) -> None:
    token = police_token(deployment.settings)
    document = unique_query()
    registered = post(deployment.base_url, token,
                      {"query": document, "extensions": persisted(document)})
    assert registered.status_code == 200
    expected = nodes(registered.json())
    assert expected, "the seeded Setiabudi has foreigners"

    by_post = post(deployment.base_url, token, {"extensions": persisted(document)})
    assert by_post.status_code == 200 and nodes(by_post.json()) == expected
    extensions = json.dumps(persisted(document))
    by_get = get(deployment.base_url, token, {"extensions": extensions})
    assert by_get.status_code == 200 and nodes(by_get.json()) == expected
    # curl's `Accept: */*` with no query is not a browser asking for GraphiQL.
    by_curl = get(deployment.base_url, token, {"extensions": extensions}, accept="*/*")
    assert by_curl.status_code == 200 and nodes(by_curl.json()) == expected


def test_a_document_registered_over_get_runs_by_hash(deployment: Deployment) -> None:
    token = police_token(deployment.settings)
    document = unique_query()
    extensions = json.dumps(persisted(document))
    first = get(deployment.base_url, token, {"extensions": extensions})
    assert codes(first.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    registered = get(deployment.base_url, token, {"query": document, "extensions": extensions})
    expected = nodes(registered.json())
    again = get(deployment.base_url, token, {"extensions": extensions})
    assert nodes(again.json()) == expected


def test_a_hash_that_does_not_match_its_query_is_a_400_and_stores_nothing(
        deployment: Deployment) -> None:
    token = police_token(deployment.settings)
    document, other = unique_query(), unique_query()
    response = post(deployment.base_url, token,
                    {"query": document, "extensions": persisted(other)})
    assert response.status_code == 400
    assert codes(response.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    lookup = post(deployment.base_url, token, {"extensions": persisted(other)})
    assert codes(lookup.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize("extension", [
    {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
    {"persistedQuery": {"version": 1, "sha256Hash": "not-a-hash"}},
    {"persistedQuery": "yes"},
])
def test_a_malformed_persisted_query_is_a_400(deployment: Deployment,
                                               extension: dict[str, Any]) -> None:
    response = post(deployment.base_url, None, {"extensions": extension})
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_REQUEST"]


def test_a_document_larger_than_the_limit_is_refused_and_not_stored(
        deployment: Deployment) -> None:
    token = police_token(deployment.settings)
    padding = "#" + "x" * (deployment.settings.max_document_bytes + 10) + "\n"
    document = padding + unique_query()
    response = post(deployment.base_url, token,
                    {"query": document, "extensions": persisted(document)})
    assert codes(response.json()) == ["DOCUMENT_TOO_LARGE"]
    lookup = post(deployment.base_url, token, {"extensions": persisted(document)})
    assert codes(lookup.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_a_document_that_fails_validation_is_not_stored(deployment: Deployment) -> None:
    token = police_token(deployment.settings)
    document = unique_query("id noSuchField")
    response = post(deployment.base_url, token,
                    {"query": document, "extensions": persisted(document)})
    assert response.json()["errors"]
    lookup = post(deployment.base_url, token, {"extensions": persisted(document)})
    assert codes(lookup.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_each_operation_of_a_batch_is_resolved_on_its_own(deployment: Deployment) -> None:
    token = police_token(deployment.settings)
    known, unknown = unique_query(), unique_query()
    post(deployment.base_url, token, {"query": known, "extensions": persisted(known)})
    response = post(deployment.base_url, token, [
        {"extensions": persisted(unknown)},
        {"extensions": persisted(known)},
        {"query": "{ __typename }"},
    ])
    assert response.status_code == 200
    first, second, third = response.json()
    assert codes(first) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert nodes(second)
    assert third == {"data": {"__typename": "Query"}}


def test_a_batch_larger_than_the_limit_is_refused_before_any_look_up(
        deployment: Deployment) -> None:
    batch = [{"extensions": persisted(unique_query())}
             for _ in range(deployment.settings.max_batch_operations + 1)]
    response = post(deployment.base_url, None, batch)
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_REQUEST"]
    assert response.json()["errors"][0]["message"] == "Too many operations"


def test_the_rate_limits_count_what_a_hash_stands_for(deployment: Deployment,
                                                      tmp_path: Path) -> None:
    """Two receipt-code guesses behind one hash are two guesses, not none."""
    document = (f"query S{uuid.uuid4().hex} {{ a: reportStatus(receiptCode: \"AAAA\") "
                "{ status } b: reportStatus(receiptCode: \"BBBB\") { status } }")
    settings = deployment.settings_with(tmp_path, rate_limits_enabled=True,
                                        rate_limit_report_status="3/minute")
    with ServerThread(create_app(settings)) as base_url:
        registered = post(base_url, None, {"query": document, "extensions": persisted(document)})
        assert registered.status_code == 200, registered.text
        by_hash = post(base_url, None, {"extensions": persisted(document)})
        assert by_hash.status_code == 429
        assert codes(by_hash.json()) == ["RATE_LIMITED"]


def test_with_apq_off_a_persisted_query_is_not_supported(deployment: Deployment,
                                                         tmp_path: Path) -> None:
    settings = deployment.settings_with(tmp_path, apq="off")
    document = unique_query()
    token = police_token(settings)
    with ServerThread(create_app(settings)) as base_url:
        for body in ({"extensions": persisted(document)},
                     {"query": document, "extensions": persisted(document)}):
            response = post(base_url, token, body)
            assert response.status_code == 200
            assert codes(response.json()) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
            assert response.json()["errors"][0]["message"] == "PersistedQueryNotSupported"
        assert nodes(post(base_url, token, {"query": document}).json())


# -- shared through Redis -------------------------------------------------------------------


@contextmanager
def replicas(deployment: Deployment, tmp: Path, *overrides: dict[str, Any]
             ) -> Iterator[list[str]]:
    with ExitStack() as stack:
        urls = []
        for index, values in enumerate(overrides):
            settings = deployment.settings_with(tmp / f"replica-{index}", **values)
            urls.append(stack.enter_context(ServerThread(create_app(settings))))
        yield urls


def test_replicas_share_registered_documents_through_redis(
        deployment: Deployment, tmp_path: Path, redis_prefix: str) -> None:
    shared = {"redis_url": REDIS_URL, "apq_key_prefix": redis_prefix, "apq_ttl_seconds": 60}
    token = police_token(deployment.settings)
    document = unique_query()
    with replicas(deployment, tmp_path, shared, shared) as (one, other):
        assert codes(post(other, token, {"extensions": persisted(document)}).json()) == [
            "PERSISTED_QUERY_NOT_FOUND"]
        expected = nodes(post(one, token, {"query": document,
                                           "extensions": persisted(document)}).json())
        assert nodes(post(other, token, {"extensions": persisted(document)}).json()) == expected
    client = redis.Redis.from_url(REDIS_URL)
    try:
        # One key, in the caller's namespace (a hash: no subject in clear).
        keys = [bytes(k).decode() for k in client.scan_iter(match=f"{redis_prefix}:*")]
        assert len(keys) == 1
        prefix, namespace, digest = keys[0].split(":")
        assert (prefix, digest) == (redis_prefix, sha256(document))
        assert len(namespace) == 32 and all(c in "0123456789abcdef" for c in namespace)
        assert client.get(keys[0]) == document.encode()
        assert 0 < client.ttl(keys[0]) <= 60
    finally:
        client.close()


def test_the_limits_apply_to_a_looked_up_document(
        deployment: Deployment, tmp_path: Path, redis_prefix: str) -> None:
    """A document registered where the limits are wide is measured again where they are
    narrow: the hash does not carry the first gateway's verdict."""
    shared = {"redis_url": REDIS_URL, "apq_key_prefix": redis_prefix}
    token = police_token(deployment.settings)
    document = (f"query A{uuid.uuid4().hex} {{ a: foreigners(first: 1) {{ nodes {{ id }} }} "
                "b: foreigners(first: 1) { nodes { id } } }")
    with replicas(deployment, tmp_path, shared, {**shared, "max_aliases": 1}) as (wide, narrow):
        registered = post(wide, token, {"query": document, "extensions": persisted(document)})
        assert "errors" not in registered.json(), registered.text
        refused = post(narrow, token, {"extensions": persisted(document)})
    assert refused.status_code == 200
    assert codes(refused.json()) == ["TOO_MANY_ALIASES"]


# -- partner clients: `sisada operations` -----------------------------------------------------


def sisada(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SISADA_")}
    env.update({"SISADA_DATABASE_URL": deployment.database_url, "SISADA_LOG_LEVEL": "WARNING"})
    return subprocess.run([SISADA, *args], capture_output=True, text=True, env=env, timeout=120)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def new_client(deployment: Deployment, mode: str) -> str:
    name = f"partner-{uuid.uuid4().hex[:12]}"
    ok(sisada(deployment, "operations", "mode", "--client", name, mode))
    return name


def register(deployment: Deployment, tmp: Path, client: str, document: str) -> str:
    path = tmp / f"{uuid.uuid4().hex}.graphql"
    path.write_text(document)
    out = ok(sisada(deployment, "operations", "add", "--client", client, str(path)))
    assert sha256(document) in out.splitlines()[0]
    return sha256(document)


def test_an_allow_list_client_runs_registered_operations_only(
        deployment: Deployment, tmp_path: Path) -> None:
    client = new_client(deployment, "allow-list")
    document = unique_query()
    digest = register(deployment, tmp_path, client, document)
    token = police_token(deployment.settings, client)
    url = deployment.base_url

    by_hash = post(url, token, {"extensions": persisted(document)})
    expected = nodes(by_hash.json())
    assert expected
    assert nodes(post(url, token, {"query": document}).json()) == expected
    assert nodes(post(url, token, {"query": document,
                                   "extensions": persisted(document)}).json()) == expected
    assert nodes(get(url, token, {"extensions": json.dumps(persisted(document))}).json()
                 ) == expected

    other = unique_query()
    refused = post(url, token, {"query": other})
    assert refused.status_code == 200
    assert codes(refused.json()) == ["OPERATION_NOT_ALLOWED"]
    assert refused.json().get("data") is None
    # Nor may it register through APQ, nor name a hash it was not given.
    assert codes(post(url, token, {"query": other, "extensions": persisted(other)}).json()
                 ) == ["OPERATION_NOT_ALLOWED"]
    assert codes(post(url, token, {"extensions": persisted(other)}).json()) == [
        "PERSISTED_QUERY_NOT_FOUND"]
    # A document that differs by one space is another document.
    assert codes(post(url, token, {"query": document + " "}).json()) == [
        "OPERATION_NOT_ALLOWED"]
    # Per operation in a batch.
    batch = post(url, token, [{"extensions": persisted(document)}, {"query": other}]).json()
    assert nodes(batch[0]) == expected and codes(batch[1]) == ["OPERATION_NOT_ALLOWED"]
    assert digest == sha256(document)


def test_an_open_client_and_callers_without_one_are_unaffected(
        deployment: Deployment, tmp_path: Path) -> None:
    locked = new_client(deployment, "allow-list")
    register(deployment, tmp_path, locked, unique_query())
    open_client = new_client(deployment, "open")
    document = unique_query()
    for token in (police_token(deployment.settings, open_client),
                  police_token(deployment.settings),
                  police_token(deployment.settings, f"never-configured-{uuid.uuid4().hex[:8]}")):
        assert nodes(post(deployment.base_url, token, {"query": document}).json())


def test_an_open_clients_registered_operation_runs_by_hash(
        deployment: Deployment, tmp_path: Path) -> None:
    client = new_client(deployment, "open")
    document = unique_query()
    register(deployment, tmp_path, client, document)
    token = police_token(deployment.settings, client)
    assert nodes(post(deployment.base_url, token, {"extensions": persisted(document)}).json())


def test_removing_an_operation_and_changing_the_mode_take_effect(
        deployment: Deployment, tmp_path: Path) -> None:
    settings = deployment.settings_with(tmp_path, operations_cache_seconds=0.2)
    client = new_client(deployment, "allow-list")
    document, other = unique_query(), unique_query()
    digest = register(deployment, tmp_path, client, document)
    token = police_token(settings, client)
    with ServerThread(create_app(settings)) as url:
        assert nodes(post(url, token, {"extensions": persisted(document)}).json())
        ok(sisada(deployment, "operations", "remove", "--client", client, digest[:12]))
        time.sleep(0.4)
        assert codes(post(url, token, {"extensions": persisted(document)}).json()) == [
            "PERSISTED_QUERY_NOT_FOUND"]
        assert codes(post(url, token, {"query": document}).json()) == ["OPERATION_NOT_ALLOWED"]
        ok(sisada(deployment, "operations", "mode", "--client", client, "open"))
        time.sleep(0.4)
        assert nodes(post(url, token, {"query": other}).json())


def test_the_limits_apply_to_a_registered_operation(deployment: Deployment,
                                                    tmp_path: Path) -> None:
    client = new_client(deployment, "allow-list")
    document = (f"query A{uuid.uuid4().hex} {{ a: foreigners(first: 1) {{ nodes {{ id }} }} "
                "b: foreigners(first: 1) { nodes { id } } }")
    register(deployment, tmp_path, client, document)
    settings = deployment.settings_with(tmp_path, max_aliases=1)
    with ServerThread(create_app(settings)) as url:
        response = post(url, police_token(settings, client), {"extensions": persisted(document)})
    assert codes(response.json()) == ["TOO_MANY_ALIASES"]


def test_a_subscription_from_an_allow_list_client_must_be_registered(
        deployment: Deployment) -> None:
    client = new_client(deployment, "allow-list")
    token = police_token(deployment.settings, client)

    async def subscribe() -> dict[str, Any]:
        async with FeedClient(deployment.base_url) as feed:
            await feed.init(token)
            op = await feed.subscribe("subscription { reportUpdated { eventId } }")
            message = await feed.receive()
            assert message["id"] == op
            return message

    message = run_async(subscribe())
    assert message["type"] == "error"
    assert [e["extensions"]["code"] for e in message["payload"]] == ["OPERATION_NOT_ALLOWED"]


def test_a_malformed_client_claim_is_refused(deployment: Deployment) -> None:
    token = police_token(deployment.settings, "Not A Name!")
    response = post(deployment.base_url, token, {"query": "{ __typename }"})
    assert response.status_code == 401
    assert codes(response.json()) == ["UNAUTHENTICATED"]


# -- what `sisada operations add` reports ---------------------------------------------------

REPORTED = ("query Report { foreigners(first: 2) { nodes { id nationality fullName "
            "passportNumber residence { streetAddress areaCode } } } }")
REPORTED_FIELDS = {("Query", "foreigners"), ("ForeignerConnection", "nodes"),
                   ("Foreigner", "id"), ("Foreigner", "nationality"),
                   ("Foreigner", "fullName"), ("Foreigner", "passportNumber"),
                   ("Foreigner", "residence"), ("Residence", "streetAddress"),
                   ("Residence", "areaCode")}


def reported_roles(output: str) -> dict[str, dict[str, set[str]]]:
    roles: dict[str, dict[str, set[str]]] = {}
    for line in output.splitlines():
        if not line.startswith("  ") or ": forbidden: " not in line:
            continue
        role, _, rest = line.strip().partition(": ")
        parts = dict(part.split(": ", 1) for part in rest.split("; "))
        roles[role] = {kind: (set() if names == "none" else set(names.split(", ")))
                       for kind, names in parts.items()}
    return roles


def test_registering_reports_what_each_role_of_the_policy_would_meet(
        deployment: Deployment, tmp_path: Path, compiled: CompiledPolicy) -> None:
    client = new_client(deployment, "open")
    path = tmp_path / "report.graphql"
    path.write_text(REPORTED)
    out = ok(sisada(deployment, "operations", "add", "--client", client, str(path)))
    assert out.splitlines()[0].startswith(f"registered {sha256(REPORTED)} for client {client}")
    assert "(operations: Report)" in out.splitlines()[0]
    roles = reported_roles(out)
    assert set(roles) == set(compiled.by_role)
    for role, access in compiled.by_role.items():
        unreadable = {f"{t}.{f}" for t, f in REPORTED_FIELDS if not access.may_read(t, f)}
        assert roles[role]["forbidden"] == {n for n in unreadable if n.startswith("Query.")}
        assert roles[role]["redacted"] == {n for n in unreadable if not n.startswith("Query.")}
    # The specification's table, read from the output: police lose identity, keep address;
    # district loses the address too; the public may not ask at all.
    assert {"Foreigner.fullName", "Foreigner.passportNumber"} <= roles["police"]["redacted"]
    assert "Residence.streetAddress" not in roles["police"]["redacted"]
    assert "Residence.streetAddress" in roles["district"]["redacted"]
    assert roles["public"]["forbidden"] == {"Query.foreigners"}
    assert roles["immigration_officer"]["redacted"] == set()
    listed = ok(sisada(deployment, "operations", "list", "--client", client))
    assert f"{client} (open): 1 operation" in listed
    assert sha256(REPORTED) in listed and "Report" in listed


def test_the_registered_document_is_stored_verbatim(deployment: Deployment,
                                                    tmp_path: Path) -> None:
    client = new_client(deployment, "open")
    document = unique_query()
    register(deployment, tmp_path, client, document)
    again = tmp_path / "again.graphql"
    again.write_text(document)
    out = ok(sisada(deployment, "operations", "add", "--client", client, str(again)))
    assert out.startswith(f"already registered {sha256(document)}")
    removed = ok(sisada(deployment, "operations", "remove", "--client", client, "--all"))
    assert removed.startswith("removed 1 operation ")
    assert orjson.loads(orjson.dumps(ok(sisada(deployment, "operations", "list", "--client",
                                               client)))).startswith(f"{client} (open): 0 ")
