"""Automatic Persisted Queries are kept per principal (hostile review of issue 12, F1).

A document holds its literals: an officer's field check names the passport it checked. Were
the store shared, anyone who recomputes the document's SHA-256 would learn from the answer
to a hash-only request (FORBIDDEN, or data, against PERSISTED_QUERY_NOT_FOUND) that the
passport was checked (SPEC rules 4 and 5). Each principal finds only what it stored itself:
by the token's issuer and subject, the anonymous by client address (as the rate limiter
sees it, through a trusted proxy here). Through real HTTP, in-process and through Redis,
asserting on the raw bytes of the answers.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis
from conftest import CITY, PURPOSE, SETIABUDI, Deployment, ServerThread
from test_persisted_operations_http import REDIS_URL

from gateway.app import create_app
from gateway.auth import mint_dev_token

OFFICER_ADDRESS = "10.20.0.1"


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def field_check(passport: str) -> str:
    """An officer's field check as a mobile client writes it: the passport a literal."""
    return (f'query FieldCheck {{ checkForeigner(documentNumber: "{passport}") '
            "{ registered foreigner { fullName permitStatus } } }")


def hash_only(document: str) -> dict[str, Any]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(document)}}}


def officer_token(deployment: Deployment, subject: str | None = None) -> str:
    return mint_dev_token(deployment.settings, "immigration_officer", area=CITY, officer_id=1,
                          subject=subject or f"apq-officer-{uuid.uuid4().hex}")


def post(base_url: str, body: dict[str, Any], token: str | None = None,
         address: str = OFFICER_ADDRESS) -> httpx.Response:
    headers = {"x-forwarded-for": address, "sisada-purpose": PURPOSE}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.post(f"{base_url}/graphql", json=body, headers=headers, timeout=30)


def answer(response: httpx.Response) -> tuple[int, bytes, tuple[str, ...]]:
    """What a caller can tell one answer from another by."""
    return (response.status_code, response.content,
            tuple(response.headers.get_list("cache-control")))


@contextmanager
def gateways(deployment: Deployment, tmp: Path, count: int, **overrides: Any
             ) -> Iterator[list[str]]:
    """`count` gateways over the deployment's data, believing the loopback's
    X-Forwarded-For (as docker-compose's gateways believe their router)."""
    with ExitStack() as stack:
        yield [stack.enter_context(ServerThread(create_app(deployment.settings_with(
            tmp / f"gateway-{index}", trusted_proxies="127.0.0.1", **overrides))))
            for index in range(count)]


def checked_passports(deployment: Deployment) -> tuple[str, str]:
    """Two passports of seeded foreigners: one an officer checks, one nobody does."""
    first, second = deployment.facts.foreigners[30], deployment.facts.foreigners[31]
    return str(first["passport_number"]), str(second["passport_number"])


def register_field_check(base_url: str, token: str, passport: str) -> str:
    document = field_check(passport)
    registered = post(base_url, {"query": document, **hash_only(document)}, token)
    assert registered.status_code == 200, registered.text
    assert registered.json()["data"]["checkForeigner"]["registered"] is True, registered.text
    return document


def test_an_officers_field_check_is_found_by_that_officer_only(
        deployment: Deployment, tmp_path: Path) -> None:
    checked, never_sent = checked_passports(deployment)
    subject = f"apq-officer-{uuid.uuid4().hex}"
    with gateways(deployment, tmp_path, 1) as (base_url,):
        document = register_field_check(base_url, officer_token(deployment, subject), checked)
        # The same officer (a new token, the same subject) runs it by its hash.
        hit = post(base_url, hash_only(document), officer_token(deployment, subject))
        assert hit.json()["data"]["checkForeigner"]["registered"] is True, hit.text

        police = mint_dev_token(deployment.settings, "police", area=SETIABUDI)
        probers = {
            "the public, from another address": (None, "10.20.0.2"),
            "the public, from the officer's address": (None, OFFICER_ADDRESS),
            "another officer": (officer_token(deployment), OFFICER_ADDRESS),
            "police": (police, "10.20.0.3"),
        }
        for who, (token, address) in probers.items():
            probe = post(base_url, hash_only(document), token, address)
            missing = post(base_url, hash_only(field_check(never_sent)), token, address)
            # Exactly the answer to a hash nobody ever sent: nothing tells them apart.
            assert answer(probe) == answer(missing), who
            assert b"PERSISTED_QUERY_NOT_FOUND" in probe.content, who
            assert checked.encode() not in probe.content, who


def test_an_anonymous_callers_documents_are_its_own_address(
        deployment: Deployment, tmp_path: Path) -> None:
    document = (f"query Counts{uuid.uuid4().hex} {{ areas(level: KECAMATAN) "
                "{ name foreignerCount } }")
    never_sent = document.replace("Counts", "Never")
    with gateways(deployment, tmp_path, 1) as (base_url,):
        registered = post(base_url, {"query": document, **hash_only(document)}, None,
                          "10.30.0.1")
        assert registered.json()["data"]["areas"], registered.text
        assert post(base_url, hash_only(document), None, "10.30.0.1").json() == \
            registered.json()
        for token, address in ((None, "10.30.0.2"), (officer_token(deployment), "10.30.0.1")):
            probe = post(base_url, hash_only(document), token, address)
            missing = post(base_url, hash_only(never_sent), token, address)
            assert answer(probe) == answer(missing)
            assert b"PERSISTED_QUERY_NOT_FOUND" in probe.content


def test_through_redis_the_officer_finds_its_document_at_every_replica_and_nobody_else(
        deployment: Deployment, tmp_path: Path, redis_prefix: str) -> None:
    checked, never_sent = checked_passports(deployment)
    subject = f"apq-officer-{uuid.uuid4().hex}"
    shared = {"redis_url": REDIS_URL, "apq_key_prefix": redis_prefix}
    with gateways(deployment, tmp_path, 2, **shared) as (one, other):
        document = register_field_check(one, officer_token(deployment, subject), checked)
        hit = post(other, hash_only(document), officer_token(deployment, subject))
        assert hit.json()["data"]["checkForeigner"]["registered"] is True, hit.text
        for token, address in ((None, "10.40.0.2"), (officer_token(deployment), "10.40.0.3")):
            probe = post(other, hash_only(document), token, address)
            missing = post(other, hash_only(field_check(never_sent)), token, address)
            assert answer(probe) == answer(missing)
            assert b"PERSISTED_QUERY_NOT_FOUND" in probe.content
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [bytes(key) for key in client.scan_iter(match=f"{redis_prefix}:*")]
    finally:
        client.close()
    # The officer's document only, under a namespace that names neither subject nor address.
    assert len(keys) == 1 and keys[0].endswith(sha256(document).encode())
    assert subject.encode() not in keys[0] and OFFICER_ADDRESS.encode() not in keys[0]


def test_an_unknown_hash_answers_alike_whoever_asks(deployment: Deployment,
                                                    tmp_path: Path) -> None:
    """The baseline the probes above compare with does not itself vary by caller."""
    document = field_check("ZZ" + uuid.uuid4().hex[:7].upper())
    with gateways(deployment, tmp_path, 1) as (base_url,):
        answers = {answer(post(base_url, hash_only(document), token, address))
                   for token, address in ((None, "10.50.0.1"), (None, "10.50.0.2"),
                                          (officer_token(deployment), "10.50.0.1"))}
    assert len(answers) == 1
    assert b"PERSISTED_QUERY_NOT_FOUND" in answers.pop()[1]
