"""Bearer tokens → principals: what the gateway accepts, and every way it says no."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from conftest import ROLES as ALL_ROLES
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError

from gateway.auth import (
    AuthConfigError,
    AuthError,
    AuthUnavailableError,
    TokenVerifier,
    dev_secret,
    mint_dev_token,
)
from gateway.settings import Settings
from policies import Policy
from policies.principal import Principal

ROLES = frozenset(ALL_ROLES)
ANONYMOUS = "public"
# What a token of each role must carry, as the shipped policy says (roles.polar).
_POLICY = Policy()
RULES: dict[str, Any] = {"jurisdictions": _POLICY.jurisdiction_levels,
                         "officer_kinds": _POLICY.officer_kinds}
SECRET = "test-secret-" + "x" * 48
ISSUER = "sisada-test"
AUDIENCE = "sisada"
SETIABUDI = "31.74.02"
AN_RT_IN_SETIABUDI = "31.74.02.1001.03.007"


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    # Every auth field explicit, so stray SISADA_* variables cannot change the outcome.
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "jwt_public_key": None,
        "jwks_url": None,
        "jwt_algorithms": ["HS256"],
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "dev_key_file": tmp_path / "dev-key",
        "dev_token_ttl_seconds": 3600,
    }
    values.update(overrides)
    return Settings(**values)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "sub": "officer-7",
        "role": "police",
        "area": SETIABUDI,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def bearer(token: str) -> str:
    return f"Bearer {token}"


def rejection(verifier: TokenVerifier, header: str | None) -> str:
    with pytest.raises(AuthError) as info:
        verifier.verify(header)
    return info.value.message


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


@pytest.fixture
def verifier(settings: Settings) -> TokenVerifier:
    return TokenVerifier(settings, ROLES, ANONYMOUS, **RULES)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def public_pem(rsa_key: rsa.RSAPrivateKey) -> str:
    return (
        rsa_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# --- HS256 (shared secret) ---------------------------------------------------------------


def test_police_token_becomes_police_principal(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")

    assert verifier.verify(bearer(token)) == Principal(
        role="police", area=SETIABUDI, subject="officer-7", issuer=ISSUER
    )


def test_immigration_officer_without_subject(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(role="immigration_officer", area="31.74", sub=None,
                              officer_id=1), SECRET, algorithm="HS256")

    assert verifier.verify(bearer(token)) == Principal(
        role="immigration_officer", area="31.74", officer_id=1, issuer=ISSUER)


def test_officer_id_as_a_numeric_string_is_rejected(verifier: TokenVerifier) -> None:
    # Ints only, as every other id the gateway reads: "1234" is not read as 1234.
    token = jwt.encode(claims(role="immigration_officer", area="31.74", officer_id="1234"),
                       SECRET, algorithm="HS256")

    assert rejection(verifier, bearer(token)) == "malformed officer_id"


# --- what a token of each role must carry (policy: roles.polar) ---------------------------


@pytest.mark.parametrize(("role", "area"), [
    ("district", "31.74"), ("district", AN_RT_IN_SETIABUDI), ("neighbourhood", SETIABUDI),
    ("neighbourhood", "31.74.02.1001"), ("police", AN_RT_IN_SETIABUDI),
    ("immigration_supervisor", SETIABUDI), ("auditor", "31.74"),
])
def test_area_of_a_level_the_role_may_not_hold_is_rejected(
    verifier: TokenVerifier, role: str, area: str
) -> None:
    officer = RULES["officer_kinds"].get(role) and 2
    token = jwt.encode(claims(role=role, area=area, officer_id=officer), SECRET, "HS256")

    assert rejection(verifier, bearer(token)) == "area not allowed for this role"


@pytest.mark.parametrize("role", ["police", "district", "neighbourhood"])
def test_token_without_the_area_its_role_needs_is_rejected(
    verifier: TokenVerifier, role: str
) -> None:
    token = jwt.encode(claims(role=role, area=None), SECRET, "HS256")

    assert rejection(verifier, bearer(token)) == "token lacks an area"


def test_officer_id_on_a_role_without_officers_is_rejected(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(officer_id=42), SECRET, algorithm="HS256")

    assert rejection(verifier, bearer(token)) == "officer_id not allowed for this role"


def test_officer_role_without_an_officer_id_is_rejected(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(role="immigration_officer", area="31.74"), SECRET, "HS256")

    assert rejection(verifier, bearer(token)) == "token lacks an officer_id"


def test_token_living_longer_than_the_maximum_is_rejected(tmp_path: Path) -> None:
    verifier = TokenVerifier(settings_for(tmp_path, max_token_lifetime_seconds=3600),
                             ROLES, ANONYMOUS, **RULES)
    now = int(time.time())
    from_iat = jwt.encode(claims(iat=now - 60, exp=now + 3600), SECRET, "HS256")
    without_iat = jwt.encode(claims(iat=None, exp=now + 7200), SECRET, "HS256")
    within = jwt.encode(claims(iat=now, exp=now + 3600), SECRET, "HS256")

    assert rejection(verifier, bearer(from_iat)) == "token lifetime too long"
    assert rejection(verifier, bearer(without_iat)) == "token lifetime too long"
    assert verifier.verify(bearer(within)).role == "police"


def test_leeway_is_a_setting(tmp_path: Path) -> None:
    expired = jwt.encode(claims(exp=int(time.time()) - 100), SECRET, "HS256")
    strict = TokenVerifier(settings_for(tmp_path), ROLES, ANONYMOUS, **RULES)
    lenient = TokenVerifier(settings_for(tmp_path, jwt_leeway_seconds=120), ROLES, ANONYMOUS,
                            **RULES)

    assert rejection(strict, bearer(expired)) == "token expired"
    assert lenient.verify(bearer(expired)).role == "police"


@pytest.mark.parametrize("subject", ["", "s" * 256])
def test_empty_or_over_long_subject_is_rejected(verifier: TokenVerifier, subject: str) -> None:
    token = jwt.encode(claims(sub=subject), SECRET, "HS256")

    assert rejection(verifier, bearer(token)) == "malformed subject"


@pytest.mark.parametrize("officer_id", ["12a", "", " 12", "12\n", "5", -1, 1.5, True, [1],
                                        {"id": 1}, 2**63])
def test_malformed_officer_id_is_rejected(verifier: TokenVerifier, officer_id: Any) -> None:
    token = jwt.encode(claims(officer_id=officer_id), SECRET, algorithm="HS256")

    assert rejection(verifier, bearer(token)) == "malformed officer_id"


def test_no_header_is_the_anonymous_public(verifier: TokenVerifier) -> None:
    assert verifier.verify(None) == Principal(role="public")


def test_bearer_scheme_is_case_insensitive(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")

    assert verifier.verify(f"bearer {token}").role == "police"


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer a b"]
)
def test_non_bearer_header_is_rejected(verifier: TokenVerifier, header: str) -> None:
    assert rejection(verifier, header) == "expected an 'Authorization: Bearer <token>' header"


def test_huge_token_is_rejected_before_parsing(verifier: TokenVerifier) -> None:
    assert rejection(verifier, bearer("a" * 100_000)) == "token too large"


def test_expired_token_is_rejected(verifier: TokenVerifier) -> None:
    now = int(time.time())
    token = jwt.encode(claims(iat=now - 7200, exp=now - 3600), SECRET, algorithm="HS256")

    assert rejection(verifier, bearer(token)) == "token expired"


def test_token_expired_within_leeway_is_accepted(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256")

    assert verifier.verify(bearer(token)).role == "police"


def test_token_not_yet_valid_is_rejected(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(nbf=int(time.time()) + 3600), SECRET, algorithm="HS256")

    assert rejection(verifier, bearer(token)) == "token not yet valid"


def test_wrong_issuer_is_rejected(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(iss="someone-else"), SECRET, algorithm="HS256")

    assert rejection(verifier, bearer(token)) == "invalid issuer"


def test_wrong_audience_is_rejected(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(aud="another-service"), SECRET, algorithm="HS256")

    assert rejection(verifier, bearer(token)) == "invalid audience"


@pytest.mark.parametrize("claim", ["exp", "iss", "aud", "role"])
def test_token_missing_a_required_claim_is_rejected(verifier: TokenVerifier, claim: str) -> None:
    token = jwt.encode({k: v for k, v in claims().items() if k != claim}, SECRET, "HS256")

    assert rejection(verifier, bearer(token)) == f"token lacks the {claim!r} claim"


def test_tampered_signature_is_rejected_without_echoing_the_token(
    verifier: TokenVerifier,
) -> None:
    header, payload, signature = jwt.encode(claims(), SECRET, algorithm="HS256").split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"

    message = rejection(verifier, bearer(tampered))

    assert message == "invalid token signature"
    assert tampered not in message and signature not in message


def test_tampered_payload_is_rejected(verifier: TokenVerifier) -> None:
    header, _, signature = jwt.encode(claims(), SECRET, algorithm="HS256").split(".")
    _, forged_payload, _ = jwt.encode(
        claims(role="immigration_supervisor"), "another-" + SECRET, algorithm="HS256"
    ).split(".")

    assert rejection(verifier, bearer(f"{header}.{forged_payload}.{signature}")) == (
        "invalid token signature"
    )


def test_token_signed_with_another_secret_is_rejected(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(), "another-" + SECRET, algorithm="HS256")

    assert rejection(verifier, bearer(token)) == "invalid token signature"


def test_unsigned_alg_none_token_is_rejected(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(role="immigration_supervisor"), None, algorithm="none")

    assert rejection(verifier, bearer(token)) == "token algorithm not accepted"


def test_alg_none_is_refused_even_when_configured(tmp_path: Path) -> None:
    verifier = TokenVerifier(
        settings_for(tmp_path, jwt_algorithms=["none", "HS256"]), ROLES, ANONYMOUS, **RULES
    )
    token = jwt.encode(claims(), None, algorithm="none")

    assert rejection(verifier, bearer(token)) == "token algorithm not accepted"


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30"])
def test_malformed_token_is_rejected(verifier: TokenVerifier, token: str) -> None:
    assert rejection(verifier, bearer(token)) == "malformed token"


@pytest.mark.parametrize("role", ["superuser", "POLICE", "", 7, ["police"]])
def test_unknown_role_is_rejected(verifier: TokenVerifier, role: Any) -> None:
    token = jwt.encode(claims(role=role), SECRET, algorithm="HS256")

    assert rejection(verifier, bearer(token)) == "unknown role"


def test_token_claiming_the_anonymous_role_is_rejected(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(role="public"), SECRET, algorithm="HS256")

    assert rejection(verifier, bearer(token)) == "unknown role"


def test_roles_come_from_the_policy_not_the_verifier(settings: Settings) -> None:
    verifier = TokenVerifier(settings, frozenset({"ranger", "visitor"}), "visitor",
                             jurisdictions={"ranger": frozenset({"kecamatan"})})
    ranger = jwt.encode(claims(role="ranger"), SECRET, algorithm="HS256")
    police = jwt.encode(claims(role="police"), SECRET, algorithm="HS256")

    assert verifier.verify(bearer(ranger)).role == "ranger"
    assert rejection(verifier, bearer(police)) == "unknown role"
    assert verifier.verify(None) == Principal(role="visitor")


@pytest.mark.parametrize("area", ["Setiabudi", "31", "31.74.2", "31.74.02.1001.03.007.1", 3174])
def test_malformed_area_is_rejected(verifier: TokenVerifier, area: Any) -> None:
    token = jwt.encode(claims(area=area), SECRET, algorithm="HS256")

    assert rejection(verifier, bearer(token)) == "malformed area"


def test_neighbourhood_head_with_rt_area(verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(role="neighbourhood", area=AN_RT_IN_SETIABUDI), SECRET, "HS256")

    assert verifier.verify(bearer(token)).area == AN_RT_IN_SETIABUDI


# --- RS256 (configured public key) -------------------------------------------------------


def test_rs256_token_verified_with_public_key(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, public_pem: str
) -> None:
    settings = settings_for(
        tmp_path, jwt_secret=None, jwt_public_key=public_pem, jwt_algorithms=["RS256"]
    )
    verifier = TokenVerifier(settings, ROLES, ANONYMOUS, **RULES)
    token = jwt.encode(claims(role="district"), rsa_key, algorithm="RS256")

    assert verifier.verify(bearer(token)).role == "district"
    assert not (tmp_path / "dev-key").exists()  # no dev key when a real key is configured


def test_public_key_with_escaped_newlines_from_env(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, public_pem: str
) -> None:
    escaped = public_pem.replace("\n", "\\n")
    settings = settings_for(tmp_path, jwt_public_key=escaped, jwt_algorithms=["RS256"])
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")

    verifier = TokenVerifier(settings, ROLES, ANONYMOUS, **RULES)
    assert verifier.verify(bearer(token)).role == "police"


def test_rs256_token_from_another_key_is_rejected(tmp_path: Path, public_pem: str) -> None:
    settings = settings_for(tmp_path, jwt_public_key=public_pem, jwt_algorithms=["RS256"])
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), other_key, algorithm="RS256")

    verifier = TokenVerifier(settings, ROLES, ANONYMOUS, **RULES)

    assert rejection(verifier, bearer(token)) == "invalid token signature"


def _hs256_signed_with(secret: bytes, payload: dict[str, Any]) -> str:
    # PyJWT refuses to sign with a PEM as an HMAC secret, so forge the token by hand,
    # exactly as an attacker holding the (public) PEM would.
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def test_hs256_token_signed_with_the_public_key_is_rejected(
    tmp_path: Path, public_pem: str
) -> None:
    settings = settings_for(tmp_path, jwt_public_key=public_pem, jwt_algorithms=["RS256"])
    forged = _hs256_signed_with(public_pem.encode(), claims(role="immigration_supervisor"))

    verifier = TokenVerifier(settings, ROLES, ANONYMOUS, **RULES)

    assert rejection(verifier, bearer(forged)) == "token algorithm not accepted"


def test_hs256_configured_beside_a_public_key_is_a_config_error(
    tmp_path: Path, public_pem: str
) -> None:
    # Fail closed: an HMAC algorithm next to a public key is refused at start-up, not
    # dropped in silence (gateway/auth.py, check_key_settings).
    settings = settings_for(tmp_path, jwt_public_key=public_pem, jwt_algorithms=["HS256", "RS256"])

    with pytest.raises(AuthConfigError, match="SISADA_JWT_ALGORITHMS names HS256"):
        TokenVerifier(settings, ROLES, ANONYMOUS, **RULES)


@pytest.mark.parametrize("value", [
    "/run/secrets/jwt_public.pem", "a-long-shared-secret-" * 3,
    "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----"])
def test_a_public_key_that_is_not_pem_is_a_config_error_naming_the_setting_only(
    tmp_path: Path, value: str
) -> None:
    settings = settings_for(tmp_path, jwt_public_key=value, jwt_algorithms=["RS256"])

    with pytest.raises(AuthConfigError) as refused:
        TokenVerifier(settings, ROLES, ANONYMOUS, **RULES)
    assert str(refused.value).startswith("SISADA_JWT_PUBLIC_KEY is not a PEM public key")
    assert value not in str(refused.value)


def test_public_key_with_only_hmac_algorithms_is_a_config_error(
    tmp_path: Path, public_pem: str
) -> None:
    settings = settings_for(tmp_path, jwt_public_key=public_pem, jwt_algorithms=["HS256"])

    with pytest.raises(AuthConfigError):
        TokenVerifier(settings, ROLES, ANONYMOUS, **RULES)


def test_unknown_algorithm_name_is_a_settings_error(tmp_path: Path) -> None:
    # Refused when the settings are read (the CLI's one line), before any verifier exists.
    with pytest.raises(ValidationError, match="names an unknown algorithm"):
        settings_for(tmp_path, jwt_algorithms=["HS999"])


# --- JWKS ---------------------------------------------------------------------------------


class _JwksServer:
    """A real HTTP server on 127.0.0.1 serving whatever body it is given."""

    def __init__(self) -> None:
        self.body: bytes = b'{"keys": []}'
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def serve_keys(self, *keys: dict[str, Any]) -> None:
        self.body = json.dumps({"keys": list(keys)}).encode()


@pytest.fixture
def jwks_server() -> Iterator[_JwksServer]:
    server = _JwksServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join(timeout=5)


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def _jwks_verifier(tmp_path: Path, url: str) -> TokenVerifier:
    settings = settings_for(tmp_path, jwt_secret=None, jwks_url=url, jwt_algorithms=["RS256"])
    return TokenVerifier(settings, ROLES, ANONYMOUS, **RULES)


def test_jwks_key_is_found_by_kid(
    tmp_path: Path, jwks_server: _JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks_server.serve_keys(_jwk(other, "old"), _jwk(rsa_key, "current"))
    verifier = _jwks_verifier(tmp_path, jwks_server.url)
    token = jwt.encode(claims(role="auditor", area=None), rsa_key, "RS256", {"kid": "current"})

    assert verifier.verify(bearer(token)) == Principal(role="auditor", subject="officer-7",
                                                       issuer=ISSUER)
    assert verifier.verify(bearer(token)).role == "auditor"
    assert jwks_server.requests == 1  # the key is cached


def test_jwks_token_with_unknown_kid_is_rejected(
    tmp_path: Path, jwks_server: _JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks_server.serve_keys(_jwk(rsa_key, "current"))
    verifier = _jwks_verifier(tmp_path, jwks_server.url)
    token = jwt.encode(claims(), rsa_key, "RS256", {"kid": "forgotten"})

    assert rejection(verifier, bearer(token)) == "unknown signing key"


def test_jwks_token_without_kid_is_rejected(
    tmp_path: Path, jwks_server: _JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks_server.serve_keys(_jwk(rsa_key, "current"))
    token = jwt.encode(claims(), rsa_key, "RS256")

    assert rejection(_jwks_verifier(tmp_path, jwks_server.url), bearer(token)) == (
        "token has no key id"
    )


def test_jwks_token_signed_by_another_key_under_a_known_kid_is_rejected(
    tmp_path: Path, jwks_server: _JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks_server.serve_keys(_jwk(rsa_key, "current"))
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), impostor, "RS256", {"kid": "current"})

    assert rejection(_jwks_verifier(tmp_path, jwks_server.url), bearer(token)) == (
        "invalid token signature"
    )


def test_jwks_hs256_token_is_rejected(
    tmp_path: Path, jwks_server: _JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks_server.serve_keys(_jwk(rsa_key, "current"))
    token = jwt.encode(claims(), SECRET, "HS256", {"kid": "current"})

    assert rejection(_jwks_verifier(tmp_path, jwks_server.url), bearer(token)) == (
        "token algorithm not accepted"
    )


def test_jwks_endpoint_unreachable_is_unavailable_not_a_crash(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    verifier = _jwks_verifier(tmp_path, f"http://127.0.0.1:{port}/jwks.json")
    token = jwt.encode(claims(), rsa_key, "RS256", {"kid": "current"})

    with pytest.raises(AuthUnavailableError) as info:
        verifier.verify(bearer(token))

    assert info.value.message == "cannot verify token right now"


@pytest.mark.parametrize(
    "body", [b"<html>oops</html>", b"[]", b'{"keys": "nope"}', b'{"keys": []}']
)
def test_jwks_endpoint_serving_garbage_is_unavailable(
    tmp_path: Path, jwks_server: _JwksServer, rsa_key: rsa.RSAPrivateKey, body: bytes
) -> None:
    jwks_server.body = body
    verifier = _jwks_verifier(tmp_path, jwks_server.url)
    token = jwt.encode(claims(), rsa_key, "RS256", {"kid": "current"})

    with pytest.raises(AuthUnavailableError):
        verifier.verify(bearer(token))


def test_jwks_url_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError):
        _jwks_verifier(tmp_path, "file:///etc/passwd")


# --- development key and tokens -------------------------------------------------------------


def test_dev_secret_is_created_private_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "dev-key"
    settings = settings_for(tmp_path, jwt_secret=None, dev_key_file=key_file)

    first = dev_secret(settings)

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 64
    assert dev_secret(settings) == first
    assert dev_secret(settings_for(tmp_path, jwt_secret=None, dev_key_file=key_file)) == first
    assert list(tmp_path.iterdir()) == [key_file]  # no temporary file left behind


def test_dev_secret_prefers_the_configured_secret(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, jwt_secret="configured-" + SECRET)

    assert dev_secret(settings) == "configured-" + SECRET
    assert not (tmp_path / "dev-key").exists()


def test_dev_secret_reads_an_existing_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "dev-key"
    key_file.write_text("existing-" + SECRET + "\n")

    settings = settings_for(tmp_path, jwt_secret=None, dev_key_file=key_file)

    assert dev_secret(settings) == "existing-" + SECRET


def test_cli_token_is_accepted_by_a_server_in_the_same_directory(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, jwt_secret=None)
    token = mint_dev_token(settings, "neighbourhood", area=AN_RT_IN_SETIABUDI)

    server = TokenVerifier(settings_for(tmp_path, jwt_secret=None), ROLES, ANONYMOUS,
                           **RULES)

    assert server.verify(bearer(token)) == Principal(
        role="neighbourhood",
        area=AN_RT_IN_SETIABUDI,
        subject=f"dev:neighbourhood:{AN_RT_IN_SETIABUDI}:-",
        issuer=ISSUER,
    )


def test_minted_token_carries_standard_claims(settings: Settings) -> None:
    token = mint_dev_token(settings, "immigration_officer", ttl_seconds=120)
    payload = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert payload["iss"] == ISSUER
    assert payload["role"] == "immigration_officer"
    assert payload["sub"] == "dev:immigration_officer:-:-"
    assert payload["exp"] - payload["iat"] == 120
    assert payload["nbf"] == payload["iat"]
    assert "area" not in payload and "officer_id" not in payload


def test_minted_token_uses_default_ttl_and_given_subject(settings: Settings) -> None:
    token = mint_dev_token(settings, "police", area=SETIABUDI, subject="alice")
    payload = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)

    assert payload["exp"] - payload["iat"] == settings.dev_token_ttl_seconds
    assert payload["sub"] == "alice"


def test_expired_minted_token_is_rejected(settings: Settings, verifier: TokenVerifier) -> None:
    token = mint_dev_token(settings, "police", area=SETIABUDI, ttl_seconds=-3600)

    assert rejection(verifier, bearer(token)) == "token expired"


def test_minting_with_malformed_area_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError):
        mint_dev_token(settings, "police", area="Setiabudi")


# --- the officer a token names (OfficerDirectory) ----------------------------------------


def test_officer_directory_asks_the_table_once_per_ttl() -> None:
    import asyncio

    from gateway.auth import OfficerDirectory

    asked: list[int] = []

    async def lookup(officer_id: int) -> str | None:
        asked.append(officer_id)
        return {1: "field", 2: "supervisor"}.get(officer_id)

    async def scenario() -> list[str | None]:
        cached = OfficerDirectory(lookup, ttl_seconds=60)
        kinds = [await cached.kind_of(1), await cached.kind_of(1), await cached.kind_of(99),
                 await cached.kind_of(99)]
        fresh = OfficerDirectory(lookup, ttl_seconds=0)
        kinds += [await fresh.kind_of(2), await fresh.kind_of(2)]
        return kinds

    assert asyncio.run(scenario()) == ["field", "field", None, None, "supervisor", "supervisor"]
    assert asked == [1, 99, 2, 2]


def test_officer_directory_down_is_unavailable_not_unknown() -> None:
    import asyncio

    from gateway.auth import OfficerDirectory
    from resolvers.db import DatabaseUnavailableError

    async def lookup(_officer_id: int) -> str | None:
        raise DatabaseUnavailableError()

    with pytest.raises(AuthUnavailableError):
        asyncio.run(OfficerDirectory(lookup, ttl_seconds=60).kind_of(1))
