"""What a token of each role must carry, over real HTTP (issue 8 §3, findings 2 and 4).

A role is bound to the levels of area the policy names for it (`jurisdiction_level` in
roles.polar): a district token carrying the city's code, or a neighbourhood head's
carrying a kecamatan's, is a 401 — it never reaches a row rule. A token that names an
officer names one of the kind its role needs (`officer_kind`), found in the officer table;
a role without officers names none. No token lives longer than the configured maximum.
"""

from __future__ import annotations

import time

import httpx
import jwt
from conftest import CITY, SETIABUDI, TEST_SECRET, Deployment

from gateway.auth import mint_dev_token

ME = "{ me { role area officerId } }"
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
    assert response.json()["data"]["me"]["area"] == rw


def test_rt_code_is_refused_as_police(deployment: Deployment) -> None:
    token = deployment.token_for("police", deployment.facts.busiest_setiabudi_rt)
    assert_refused(send(deployment, token), "area not allowed for this role")


def test_city_code_is_accepted_as_police_of_the_city(deployment: Deployment) -> None:
    response = send(deployment, deployment.token_for("police", CITY))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["me"] == {"role": "police", "area": CITY, "officerId": None}


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
    assert response.json()["data"]["me"]["officerId"] == SEEDED_FIELD_OFFICER


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
