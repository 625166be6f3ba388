"""Bad tokens over real HTTP: every way a bearer token can be wrong is a 401 with a clear
message, a `WWW-Authenticate: Bearer` challenge, and nothing of the token or the key echoed.

The HS256 cases run against the session gateway (`deployment`, SQLite and PostgreSQL); the
algorithm-confusion and key-id cases against gateways of this module's own, configured with
an RSA public key or a JWKS endpoint served from a thread on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from conftest import SETIABUDI, TEST_SECRET, Deployment, ServerThread, make_settings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from jwt.utils import base64url_decode, base64url_encode

from gateway.app import create_app
from gateway.auth import MAX_TOKEN_LENGTH

ME = "{ sisadaMe { role area officerId } }"
KID = "sisada-current"


# --- token helpers (PyJWT directly, never the gateway's own minting) ----------------------


def claims(deployment: Deployment, **overrides: Any) -> dict[str, Any]:
    """A valid police token's claims for this deployment; `None` drops a claim."""
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": deployment.settings.jwt_issuer,
        "aud": deployment.settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "sub": "tokens-http-test",
        "role": "police",
        "area": SETIABUDI,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def hs256(payload: dict[str, Any], secret: str = TEST_SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def b64(data: bytes) -> str:
    return base64url_encode(data).decode("ascii")


def hs256_by_hand(payload: dict[str, Any], secret: bytes) -> str:
    """HS256 with any bytes as the key. PyJWT refuses a PEM as an HMAC secret; an attacker
    holding the public key does not."""
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def change_one_byte(segment: str, old: bytes, new: bytes) -> str:
    """The base64url segment with the first `old` byte replaced by `new`, re-encoded."""
    assert len(old) == len(new) == 1
    raw = base64url_decode(segment.encode("ascii"))
    index = raw.index(old)
    return b64(raw[:index] + new + raw[index + 1:])


# --- HTTP helpers ---------------------------------------------------------------------------


def post(client: httpx.Client, base_url: str, authorization: str | None) -> httpx.Response:
    headers = {} if authorization is None else {"authorization": authorization}
    return client.post(f"{base_url}/graphql", json={"query": ME}, headers=headers)


def send_token(deployment: Deployment, token: str) -> httpx.Response:
    return post(deployment.client, deployment.base_url, f"Bearer {token}")


def assert_unauthenticated(response: httpx.Response, message: str, *secrets: str) -> None:
    """A 401 that says `message`, challenges for a bearer token, and leaks none of `secrets`
    (nor any long piece of one: a JWT's segments are checked one by one)."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].split(";")[0].strip() == "application/json"
    assert response.json() == {
        "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]
    }
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.split(" ")[0].lower() == "bearer", challenge
    raw = response.content
    for secret in (TEST_SECRET, *secrets):
        pieces = {secret, *(part for part in secret.split(".") if len(part) >= 8)}
        for piece in pieces:
            assert piece.encode() not in raw, f"the response echoes {piece[:20]}…"


def assert_me(response: httpx.Response, role: str, area: str | None = SETIABUDI) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["sisadaMe"]["role"] == role
    assert body["data"]["sisadaMe"]["area"] == area


# --- HS256 gateway (the session deployment) -------------------------------------------------


def test_valid_hs256_token_is_accepted(deployment: Deployment) -> None:
    assert_me(send_token(deployment, hs256(claims(deployment))), "police")


def test_alg_none_token_is_refused(deployment: Deployment) -> None:
    token = jwt.encode(claims(deployment, role="immigration_supervisor"), None, algorithm="none")

    assert_unauthenticated(send_token(deployment, token), "token algorithm not accepted", token)


def test_token_signed_with_a_wrong_secret_is_refused(deployment: Deployment) -> None:
    wrong_secret = "not-the-" + TEST_SECRET
    token = hs256(claims(deployment, role="immigration_supervisor", area=None), wrong_secret)

    assert_unauthenticated(send_token(deployment, token), "invalid token signature",
                           token, wrong_secret)


def test_token_with_one_signature_byte_changed_is_refused(deployment: Deployment) -> None:
    header, payload, signature = hs256(claims(deployment)).split(".")
    raw = base64url_decode(signature.encode("ascii"))
    flipped = b64(bytes([raw[0] ^ 0x01]) + raw[1:])
    token = f"{header}.{payload}.{flipped}"

    assert_unauthenticated(send_token(deployment, token), "invalid token signature", token)


def test_token_with_one_payload_byte_changed_is_refused(deployment: Deployment) -> None:
    # Setiabudi police (31.74.02) rewrites its own token to reach Tebet (31.74.01).
    header, payload, signature = hs256(claims(deployment)).split(".")
    assert b'"31.74.02"' in base64url_decode(payload.encode("ascii"))
    raw = base64url_decode(payload.encode("ascii")).replace(b'"31.74.02"', b'"31.74.01"')
    token = f"{header}.{b64(raw)}.{signature}"

    assert_unauthenticated(send_token(deployment, token), "invalid token signature", token)


def test_expired_token_is_refused(deployment: Deployment) -> None:
    now = int(time.time())
    expired_at = now - deployment.settings.jwt_leeway_seconds - 60
    token = hs256(claims(deployment, iat=expired_at - 600, nbf=expired_at - 600, exp=expired_at))

    assert_unauthenticated(send_token(deployment, token), "token expired", token)


def test_token_not_yet_valid_beyond_the_leeway_is_refused(deployment: Deployment) -> None:
    leeway = deployment.settings.jwt_leeway_seconds
    token = hs256(claims(deployment, nbf=int(time.time()) + leeway + 600))

    assert_unauthenticated(send_token(deployment, token), "token not yet valid", token)


def test_token_from_another_issuer_is_refused(deployment: Deployment) -> None:
    token = hs256(claims(deployment, iss="https://idp.example.org"))

    assert_unauthenticated(send_token(deployment, token), "invalid issuer", token)


def test_token_for_another_audience_is_refused(deployment: Deployment) -> None:
    token = hs256(claims(deployment, aud="some-other-service"))

    assert_unauthenticated(send_token(deployment, token), "invalid audience", token)


def test_token_without_a_role_is_refused(deployment: Deployment) -> None:
    token = hs256(claims(deployment, role=None))

    assert_unauthenticated(send_token(deployment, token), "token lacks the 'role' claim", token)


def test_token_with_an_unknown_role_is_refused(deployment: Deployment) -> None:
    token = hs256(claims(deployment, role="superuser"))

    assert_unauthenticated(send_token(deployment, token), "unknown role", token)


def test_token_claiming_the_anonymous_public_role_is_refused(deployment: Deployment) -> None:
    token = hs256(claims(deployment, role="public", area=None))

    assert_unauthenticated(send_token(deployment, token), "unknown role", token)


def test_token_with_an_area_name_instead_of_a_code_is_refused(deployment: Deployment) -> None:
    token = hs256(claims(deployment, area="Setiabudi"))

    assert_unauthenticated(send_token(deployment, token), "malformed area", token)


def test_token_with_an_area_code_and_a_trailing_newline_is_refused(
    deployment: Deployment,
) -> None:
    token = hs256(claims(deployment, area="31.74.02\n"))

    assert_unauthenticated(send_token(deployment, token), "malformed area", token)


def test_token_with_a_malformed_officer_id_is_refused(deployment: Deployment) -> None:
    token = hs256(claims(deployment, role="immigration_officer", area="31.74", officer_id="12a"))

    assert_unauthenticated(send_token(deployment, token), "malformed officer_id", token)


def test_garbage_bearer_token_is_refused(deployment: Deployment) -> None:
    token = "not-a-jwt-but-some-garbage"

    assert_unauthenticated(send_token(deployment, token), "malformed token", token)


def test_non_bearer_authorization_scheme_is_refused(deployment: Deployment) -> None:
    credentials = "dXNlcjpzM2NyZXQtcGFzc3dvcmQ="  # user:s3cret-password

    response = post(deployment.client, deployment.base_url, f"Basic {credentials}")

    assert_unauthenticated(response, "expected an 'Authorization: Bearer <token>' header",
                           credentials)
    # RFC 6750 §3: no bearer token was sent, so the challenge carries no error code.
    assert response.headers["www-authenticate"] == 'Bearer realm="sisada"'


def test_failed_bearer_token_is_challenged_as_invalid_token(deployment: Deployment) -> None:
    response = post(deployment.client, deployment.base_url, "Bearer not-a-jwt")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="sisada", error="invalid_token"'


def test_over_long_token_is_refused(deployment: Deployment) -> None:
    # A real, validly signed token padded out with a huge claim: refused for its size alone.
    token = hs256(claims(deployment, padding="x" * MAX_TOKEN_LENGTH))
    assert len(token) > MAX_TOKEN_LENGTH

    assert_unauthenticated(send_token(deployment, token), "token too large", token)


# --- RS256 gateway (a configured public key) ----------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def public_pem(rsa_key: rsa.RSAPrivateKey) -> str:
    return rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def pem_body(pem: str) -> str:
    """The base64 of a PEM without its armour lines, joined: what a leak would contain."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


@pytest.fixture(scope="module")
def rs256_gateway(
    deployment: Deployment, tmp_path_factory: pytest.TempPathFactory, public_pem: str
) -> Iterator[str]:
    settings = make_settings(
        deployment.database_url, tmp_path_factory.mktemp("rs256"), jwt_secret=None,
        jwt_public_key=public_pem, jwt_algorithms=["RS256"],
    )
    with ServerThread(create_app(settings)) as base_url:
        yield base_url


def test_rs256_gateway_accepts_a_token_signed_by_its_key(
    deployment: Deployment, rs256_gateway: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = jwt.encode(claims(deployment, role="district"), rsa_key, algorithm="RS256")

    assert_me(post(deployment.client, rs256_gateway, f"Bearer {token}"), "district")


def test_hs256_token_signed_with_the_public_key_is_refused(
    deployment: Deployment, rs256_gateway: str, public_pem: str
) -> None:
    forged = hs256_by_hand(claims(deployment, role="immigration_supervisor", area=None),
                           public_pem.encode("ascii"))

    response = post(deployment.client, rs256_gateway, f"Bearer {forged}")

    assert_unauthenticated(response, "token algorithm not accepted", forged, pem_body(public_pem))


def test_rs256_token_signed_by_another_key_is_refused(
    deployment: Deployment, rs256_gateway: str, public_pem: str
) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(deployment), impostor, algorithm="RS256")

    response = post(deployment.client, rs256_gateway, f"Bearer {token}")

    assert_unauthenticated(response, "invalid token signature", token, pem_body(public_pem),
                           pem_body(private_pem(impostor)))


def test_rs256_gateway_refuses_hs256_tokens_signed_with_the_dev_secret(
    deployment: Deployment, rs256_gateway: str
) -> None:
    token = hs256(claims(deployment))

    response = post(deployment.client, rs256_gateway, f"Bearer {token}")

    assert_unauthenticated(response, "token algorithm not accepted", token)


# --- JWKS gateway (keys found by `kid`) ------------------------------------------------------


@dataclass
class JwksServer:
    server: ThreadingHTTPServer
    url: str
    body: bytes
    requests: int = 0


@pytest.fixture(scope="module")
def jwks_server(rsa_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    jwk = {**RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True),
           "kid": KID, "use": "sig", "alg": "RS256"}
    state: list[JwksServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served = state[0]
            served.requests += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    state.append(JwksServer(server, url, json.dumps({"keys": [jwk]}).encode()))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield state[0]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def jwks_gateway(
    deployment: Deployment, tmp_path_factory: pytest.TempPathFactory, jwks_server: JwksServer
) -> Iterator[str]:
    settings = make_settings(
        deployment.database_url, tmp_path_factory.mktemp("jwks"), jwt_secret=None,
        jwks_url=jwks_server.url, jwt_algorithms=["RS256"],
    )
    with ServerThread(create_app(settings)) as base_url:
        yield base_url


def test_jwks_gateway_accepts_a_token_whose_kid_it_publishes(
    deployment: Deployment, jwks_gateway: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = jwt.encode(claims(deployment, role="military"), rsa_key, algorithm="RS256",
                       headers={"kid": KID})

    assert_me(post(deployment.client, jwks_gateway, f"Bearer {token}"), "military")


def test_token_with_an_unknown_kid_is_refused(
    deployment: Deployment, jwks_gateway: str, jwks_server: JwksServer,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    token = jwt.encode(claims(deployment), rsa_key, algorithm="RS256",
                       headers={"kid": "retired-2019"})

    response = post(deployment.client, jwks_gateway, f"Bearer {token}")

    assert_unauthenticated(response, "unknown signing key", token)


def test_unknown_kids_do_not_make_the_gateway_hammer_the_jwks_endpoint(
    deployment: Deployment, jwks_gateway: str, jwks_server: JwksServer,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    before = jwks_server.requests
    for attempt in range(10):
        token = jwt.encode(claims(deployment), rsa_key, algorithm="RS256",
                           headers={"kid": f"made-up-{attempt}"})
        response = post(deployment.client, jwks_gateway, f"Bearer {token}")
        assert_unauthenticated(response, "unknown signing key", token)

    assert jwks_server.requests - before <= 1  # PyJWKClient's refresh cooldown holds


def test_token_without_a_kid_is_refused_by_the_jwks_gateway(
    deployment: Deployment, jwks_gateway: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = jwt.encode(claims(deployment), rsa_key, algorithm="RS256")

    response = post(deployment.client, jwks_gateway, f"Bearer {token}")

    assert_unauthenticated(response, "token has no key id", token)


# --- and after all of that ------------------------------------------------------------------


def test_gateways_keep_serving_valid_tokens_after_the_refusals(
    deployment: Deployment, rs256_gateway: str, jwks_gateway: str,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    assert_me(send_token(deployment, hs256(claims(deployment))), "police")
    assert_me(send_token(deployment, deployment.token_for("auditor")), "auditor", None)
    assert_me(post(deployment.client, deployment.base_url, None), "public", None)

    rs256 = jwt.encode(claims(deployment), rsa_key, algorithm="RS256")
    assert_me(post(deployment.client, rs256_gateway, f"Bearer {rs256}"), "police")

    by_kid = jwt.encode(claims(deployment), rsa_key, algorithm="RS256", headers={"kid": KID})
    assert_me(post(deployment.client, jwks_gateway, f"Bearer {by_kid}"), "police")
