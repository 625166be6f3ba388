"""What a token of each role must carry, over real HTTP (issue 8 §3, findings 2 and 4).

A role is bound to the levels of area the policy names for it (`jurisdiction_level` in
roles.polar): a district token carrying the city's code, or a neighbourhood head's
carrying a kecamatan's, is a 401 — it never reaches a row rule. A token that names an
officer names one of the kind its role needs (`officer_kind`), found in the officer table;
a role without officers names none. No token lives longer than the configured maximum.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest
from conftest import CITY, SETIABUDI, TEST_SECRET, Deployment

from gateway.auth import mint_dev_token

ME = "{ sisadaMe { role area officerId } }"
FOREIGNERS = "{ foreigners(first: 1000) { totalCount nodes { id } } }"
AREAS = "{ areas { code foreignerCount } }"
SEEDED_FIELD_OFFICER, SEEDED_SUPERVISOR = 1, 2


def send(deployment: Deployment, token: str, query: str = ME) -> httpx.Response:
    return deployment.post(query, token=token)


def assert_refused(response: httpx.Response, message: str) -> None:
    """A 401 saying `message`, and not a byte of data."""
    assert response.status_code == 401, response.text
    assert response.json() == {
        "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]}
    assert b'"data"' not in response.content


def an_rw_in_setiabudi(deployment: Deployment) -> str:
    return deployment.facts.busiest_setiabudi_rt.rsplit(".", 1)[0]


# -- jurisdiction levels (finding 4) ------------------------------------------------------


def test_city_code_is_refused_as_district(deployment: Deployment) -> None:
    token = deployment.token_for("district", CITY)
    response = send(deployment, token, FOREIGNERS)
    assert_refused(response, "area not allowed for this role")
    # The whole city, which the token asked for, is nowhere in the answer.
    for foreigner in deployment.facts.foreigners[:50]:
        assert f'"id":"{foreigner["id"]}"'.encode() not in response.content


def test_kecamatan_code_is_refused_as_neighbourhood_head(deployment: Deployment) -> None:
    token = deployment.token_for("neighbourhood", SETIABUDI)
    response = send(deployment, token, AREAS)
    assert_refused(response, "area not allowed for this role")
    assert deployment.facts.busiest_setiabudi_rt.encode() not in response.content


def test_kelurahan_code_is_refused_as_neighbourhood_head(deployment: Deployment) -> None:
    kelurahan = deployment.facts.busiest_setiabudi_rt.rsplit(".", 2)[0]
    assert_refused(send(deployment, deployment.token_for("neighbourhood", kelurahan)),
                   "area not allowed for this role")


def test_rw_code_is_accepted_as_neighbourhood_head(deployment: Deployment) -> None:
    rw = an_rw_in_setiabudi(deployment)
    response = send(deployment, deployment.token_for("neighbourhood", rw))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["sisadaMe"]["area"] == rw


def test_rt_code_is_refused_as_police(deployment: Deployment) -> None:
    token = deployment.token_for("police", deployment.facts.busiest_setiabudi_rt)
    assert_refused(send(deployment, token), "area not allowed for this role")


def test_city_code_is_accepted_as_police_of_the_city(deployment: Deployment) -> None:
    response = send(deployment, deployment.token_for("police", CITY))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["sisadaMe"] == {"role": "police", "area": CITY,
                                                  "officerId": None}


def test_kecamatan_code_is_refused_as_immigration_supervisor(deployment: Deployment) -> None:
    token = deployment.token_for("immigration_supervisor", SETIABUDI, SEEDED_SUPERVISOR)
    assert_refused(send(deployment, token), "area not allowed for this role")


def test_token_without_an_area_is_refused_as_district(deployment: Deployment) -> None:
    assert_refused(send(deployment, deployment.token_for("district")), "token lacks an area")


def test_any_area_is_refused_as_auditor(deployment: Deployment) -> None:
    assert_refused(send(deployment, deployment.token_for("auditor", CITY)),
                   "area not allowed for this role")
    response = send(deployment, deployment.token_for("auditor"))
    assert response.status_code == 200, response.text


# -- the token's lifetime -----------------------------------------------------------------


def test_token_living_longer_than_the_maximum_is_refused_as_police(
    deployment: Deployment,
) -> None:
    longest = deployment.settings.max_token_lifetime_seconds
    token = mint_dev_token(deployment.settings, "police", area=SETIABUDI,
                           ttl_seconds=longest + 3600)
    assert_refused(send(deployment, token), "token lifetime too long")
    within = mint_dev_token(deployment.settings, "police", area=SETIABUDI, ttl_seconds=longest)
    assert send(deployment, within).status_code == 200


def test_token_without_iat_expiring_beyond_the_maximum_is_refused_as_police(
    deployment: Deployment,
) -> None:
    settings = deployment.settings
    far = int(time.time()) + settings.max_token_lifetime_seconds + 3600
    token = jwt.encode({"iss": settings.jwt_issuer, "aud": settings.jwt_audience, "exp": far,
                        "role": "police", "area": SETIABUDI}, TEST_SECRET, algorithm="HS256")
    assert_refused(send(deployment, token), "token lifetime too long")


# -- officers (finding 2) -----------------------------------------------------------------


def test_field_officer_is_accepted_as_immigration_officer(deployment: Deployment) -> None:
    token = deployment.token_for("immigration_officer", CITY, SEEDED_FIELD_OFFICER)
    response = send(deployment, token)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["sisadaMe"]["officerId"] == SEEDED_FIELD_OFFICER


def test_supervisor_id_is_refused_as_immigration_officer(deployment: Deployment) -> None:
    token = deployment.token_for("immigration_officer", CITY, SEEDED_SUPERVISOR)
    assert_refused(send(deployment, token, FOREIGNERS), "unknown officer")


def test_field_officer_id_is_refused_as_immigration_supervisor(deployment: Deployment) -> None:
    token = deployment.token_for("immigration_supervisor", CITY, SEEDED_FIELD_OFFICER)
    assert_refused(send(deployment, token, "{ activities(first: 5) { nodes { id } } }"),
                   "unknown officer")


def test_id_of_no_officer_is_refused_as_immigration_officer(deployment: Deployment) -> None:
    for officer in (999_999, 2**40):
        token = deployment.token_for("immigration_officer", CITY, officer)
        assert_refused(send(deployment, token), "unknown officer")


def test_token_without_an_officer_id_is_refused_as_immigration_officer(
    deployment: Deployment,
) -> None:
    token = deployment.token_for("immigration_officer", CITY)
    assert_refused(send(deployment, token), "token lacks an officer_id")


def test_officer_id_is_refused_as_police(deployment: Deployment) -> None:
    token = deployment.token_for("police", SETIABUDI, SEEDED_FIELD_OFFICER)
    assert_refused(send(deployment, token), "officer_id not allowed for this role")


def test_refusals_repeat_and_valid_officers_keep_working(deployment: Deployment) -> None:
    # Answers come from the officer cache the second time: the same, either way.
    wrong = deployment.token_for("immigration_officer", CITY, SEEDED_SUPERVISOR)
    right = deployment.token_for("immigration_supervisor", CITY, SEEDED_SUPERVISOR)
    for _ in range(3):
        assert_refused(send(deployment, wrong), "unknown officer")
        assert send(deployment, right).status_code == 200


# -- claim types (review F4): a signed claim of the wrong type is a 401, never a 500 -------

# `<future>`, `<iss>`, `<aud>` stand for a valid value of the claim, in a wrong shape.
WRONG_TIMES = ['"0"', '"<future>"', '" 5"', '"1_0"', "true", "false", "1.5", "<future>.5",
               "1e400", "NaN", "Infinity", "-Infinity", "-1", "1" + "0" * 30, "[1]",
               '{"t": 1}', '""', "null"]
WRONG_STRINGS = ["7", "1.5", "true", "false", "[]", '["x"]', "{}", "NaN", "1" + "0" * 30]


def _time_cases() -> list[tuple[str, str, str]]:
    cases = [(claim, raw, f"malformed {claim!r} claim")
             for claim in ("exp", "nbf", "iat") for raw in WRONG_TIMES]
    # `exp: null` is no expiry at all: the required claim is missing.
    return [(c, r, "token lacks the 'exp' claim" if (c, r) == ("exp", "null") else m)
            for c, r, m in cases]


CLAIM_CASES = [
    *_time_cases(),
    *[("role", raw, "unknown role") for raw in WRONG_STRINGS],
    ("role", '"police "', "unknown role"),
    ("role", "null", "token lacks the 'role' claim"),
    *[("area", raw, "malformed area") for raw in [*WRONG_STRINGS, "31.74", "null"]],
    ("area", '["31.74.02"]', "malformed area"),
    *[("sub", raw, "malformed subject") for raw in [*WRONG_STRINGS, "null", '""',
                                                     '"a\\u0000b"', '"\\ud800"', '"a\\nb"']],
    *[("iss", raw, "invalid issuer") for raw in [*WRONG_STRINGS, '["<iss>"]']],
    ("iss", "null", "token lacks the 'iss' claim"),
    *[("aud", raw, "invalid audience") for raw in ["7", "true", '{"a": 1}', "[7]", '[["<aud>"]]']],
    ("aud", "null", "token lacks the 'aud' claim"),
    ("jti", "7", "invalid token"),
]

OFFICER_ID_CASES = ['"1"', '" 1"', '"01"', "1.0", "1.5", "true", "false", "[1]", '{"id": 1}',
                    "null", "-1", "1e400", "NaN", str(2**63), "1" + "0" * 30, '""']


def _raw_token(deployment: Deployment, claim: str, raw: str, **base: Any) -> str:
    """A token signed with the test secret whose `claim` is the JSON text `raw`, the rest a
    valid police token (or `base`). Signed by hand: PyJWT would not encode NaN or null."""
    settings = deployment.settings
    now = int(time.time())
    claims = {"iss": settings.jwt_issuer, "aud": settings.jwt_audience, "iat": now,
              "nbf": now, "exp": now + 600, "sub": "claims-http-test", "role": "police",
              "area": SETIABUDI, **base}
    members = {name: json.dumps(value) for name, value in claims.items()}
    members[claim] = (raw.replace("<future>", str(now + 600))
                      .replace("<iss>", settings.jwt_issuer)
                      .replace("<aud>", settings.jwt_audience))
    payload = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in members.items()) + "}"
    return jwt.api_jws.encode(payload.encode(), TEST_SECRET, algorithm="HS256")


@pytest.mark.parametrize(("claim", "raw", "message"), CLAIM_CASES)
def test_claim_of_the_wrong_type_is_refused_as_police(
    deployment: Deployment, claim: str, raw: str, message: str,
) -> None:
    assert_refused(send(deployment, _raw_token(deployment, claim, raw)), message)


@pytest.mark.parametrize("raw", OFFICER_ID_CASES)
def test_officer_id_that_is_not_an_integer_is_refused_as_immigration_officer(
    deployment: Deployment, raw: str,
) -> None:
    token = _raw_token(deployment, "officer_id", raw, role="immigration_officer", area=CITY)
    assert_refused(send(deployment, token), "malformed officer_id")


def test_integer_officer_id_is_accepted_as_immigration_officer(deployment: Deployment) -> None:
    # The same token as above with a JSON integer: the refusals are about the type alone.
    token = _raw_token(deployment, "officer_id", str(SEEDED_FIELD_OFFICER),
                       role="immigration_officer", area=CITY)
    response = send(deployment, token)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["sisadaMe"]["officerId"] == SEEDED_FIELD_OFFICER


def test_iat_of_zero_as_a_string_is_refused_not_a_server_error_as_police(
    deployment: Deployment,
) -> None:
    # The review's case: PyJWT takes "0" (it compares int(iat)); the lifetime check did not.
    assert_refused(send(deployment, _raw_token(deployment, "iat", '"0"'), FOREIGNERS),
                   "malformed 'iat' claim")
    # A JSON 0 is a well-formed iat, and a token that claims to have lived since 1970.
    assert_refused(send(deployment, _raw_token(deployment, "iat", "0")),
                   "token lifetime too long")


def test_integer_time_claims_are_still_checked_as_police(deployment: Deployment) -> None:
    now = int(time.time())
    leeway = deployment.settings.jwt_leeway_seconds
    assert_refused(send(deployment, _raw_token(deployment, "exp", str(now - leeway - 60))),
                   "token expired")
    for claim in ("nbf", "iat"):
        assert_refused(send(deployment, _raw_token(deployment, claim, str(now + leeway + 600))),
                       "token not yet valid")
    assert send(deployment, _raw_token(deployment, "exp", str(now + 60))).status_code == 200


def test_huge_number_beyond_the_json_parser_is_a_malformed_token_as_police(
    deployment: Deployment,
) -> None:
    # Python refuses to parse an integer of more than 4300 digits: the payload is not JSON.
    assert_refused(send(deployment, _raw_token(deployment, "exp", "1" + "0" * 5000)),
                   "malformed token")
