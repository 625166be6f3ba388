"""Tokens verified with a public key (SISADA_JWT_PUBLIC_KEY), through the real `sisada serve`:
a value that is not a PEM public key (a file path, the common mistake) refuses the start-up
in one line instead of becoming an HS256 shared secret anyone could sign with; an HMAC
algorithm beside a public key refuses the start-up too; and an HS256 token forged with the
public key's PEM text as its secret (algorithm confusion) is a 401 over HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from conftest import SETIABUDI, free_port
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SISADA = str(Path(sys.executable).parent / "sisada")
USAGE = 2
CITY = SETIABUDI.rsplit(".", 1)[0]


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def public_pem(rsa_key: rsa.RSAPrivateKey) -> str:
    return rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def environment(tmp: Path, **settings: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SISADA_")}
    return {**base, "SISADA_LOG_LEVEL": "WARNING",
            "SISADA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'office.db'}",
            "SISADA_REGISTRY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'registry.db'}",
            **settings}


def refused(tmp: Path, **settings: str) -> str:
    """The one stderr line of a `sisada serve` that refuses to start."""
    done = subprocess.run([SISADA, "serve", "--migrate", "--port", str(free_port())], cwd=tmp,
                          env=environment(tmp, **settings), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == USAGE, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, public_pem: str) -> Iterator[str]:
    """`sisada serve` verifying RS256 tokens with a real public key."""
    tmp = tmp_path_factory.mktemp("public-key")
    port = free_port()
    process = subprocess.Popen(
        [SISADA, "serve", "--migrate", "--port", str(port)], cwd=tmp,
        env=environment(tmp, SISADA_JWT_PUBLIC_KEY=public_pem,
                        SISADA_JWT_ALGORITHMS='["RS256"]', SISADA_RATE_LIMITS_ENABLED="false"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "sisada serve did not start"
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "sisada-dev", "aud": "sisada", "iat": now, "exp": now + 600,
            "sub": "tester", **overrides}


def hs256_signed_with(secret: bytes, payload: dict[str, Any]) -> str:
    """An HS256 token made by hand, as an attacker holding the (public) PEM would (PyJWT
    refuses to sign with a PEM as an HMAC secret)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def ask(base: str, token: str) -> httpx.Response:
    return httpx.post(f"{base}/graphql", json={"query": "{ __typename }"},
                      headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_a_public_key_that_is_a_file_path_refuses_the_start_up(tmp_path: Path) -> None:
    path = "/run/secrets/jwt_public.pem"
    line = refused(tmp_path, SISADA_JWT_PUBLIC_KEY=path)
    assert line.startswith("sisada serve: SISADA_JWT_PUBLIC_KEY is not a PEM public key")
    assert path not in line
    # Refused before anything was done: no database was created.
    assert not (tmp_path / "office.db").exists()


def test_a_public_key_that_is_a_file_path_refuses_the_start_up_in_production(
        tmp_path: Path) -> None:
    line = refused(tmp_path, SISADA_JWT_PUBLIC_KEY="/run/secrets/jwt_public.pem",
                   SISADA_ENVIRONMENT="production", SISADA_GRAPHIQL="false",
                   SISADA_INTROSPECTION="off")
    assert "SISADA_JWT_PUBLIC_KEY is not a PEM public key" in line


def test_a_private_key_as_public_key_refuses_the_start_up_without_showing_it(
        tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    private = rsa_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    line = refused(tmp_path, SISADA_JWT_PUBLIC_KEY=private, SISADA_JWT_ALGORITHMS='["RS256"]')
    assert "SISADA_JWT_PUBLIC_KEY is not a PEM public key" in line
    assert "PRIVATE" not in line


@pytest.mark.parametrize("algorithms", ['["HS256"]', '["RS256", "HS256"]', "RS256,HS512"])
def test_an_hmac_algorithm_beside_a_public_key_refuses_the_start_up(
        tmp_path: Path, public_pem: str, algorithms: str) -> None:
    line = refused(tmp_path, SISADA_JWT_PUBLIC_KEY=public_pem, SISADA_JWT_ALGORITHMS=algorithms)
    assert "SISADA_JWT_ALGORITHMS names HS" in line
    assert "SISADA_JWT_PUBLIC_KEY" in line
    assert "BEGIN PUBLIC KEY" not in line


def test_an_hmac_algorithm_beside_a_jwks_url_refuses_the_start_up(tmp_path: Path) -> None:
    line = refused(tmp_path, SISADA_JWKS_URL="http://127.0.0.1:9/.well-known/jwks.json",
                   SISADA_JWT_ALGORITHMS='["RS256", "HS256"]')
    assert "SISADA_JWT_ALGORITHMS names HS256 beside SISADA_JWKS_URL" in line


def test_a_supervisor_token_forged_with_the_public_key_as_hmac_secret_is_401(
        server: str, public_pem: str) -> None:
    forged = hs256_signed_with(public_pem.encode(), claims(
        role="immigration_supervisor", area=CITY, officer_id=1))
    answer = ask(server, forged)
    assert answer.status_code == 401
    assert b"token algorithm not accepted" in answer.content
    # The same PEM with the "\n" escapes an env file may carry: refused alike.
    escaped = hs256_signed_with(public_pem.replace("\n", "\\n").encode(), claims(
        role="immigration_supervisor", area=CITY, officer_id=1))
    assert ask(server, escaped).status_code == 401


def test_a_token_signed_with_the_private_key_is_accepted(
        server: str, rsa_key: rsa.RSAPrivateKey) -> None:
    genuine = jwt.encode(claims(role="district", area=SETIABUDI), rsa_key, algorithm="RS256")
    answer = ask(server, genuine)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"data": {"__typename": "Query"}}
