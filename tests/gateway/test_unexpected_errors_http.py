"""An unexpected failure outside GraphQL (here: the officer table gone while the gateway
runs, so checking a token's officer fails) answers a JSON 500 that keeps the request id
(header, and the one log line), names the error by type only, and is logged once — not
again by uvicorn as "Exception in ASGI application"."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import httpx
import pytest
from conftest import CITY, ServerThread, make_settings, migrated_database

from gateway.app import create_app
from gateway.auth import mint_dev_token


def test_a_crash_before_graphql_keeps_its_request_id_and_is_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with migrated_database("sqlite", tmp_path) as url:
        settings = make_settings(url, tmp_path)
        token = mint_dev_token(settings, "immigration_supervisor", area=CITY, officer_id=2)
        with ServerThread(create_app(settings)) as base:
            database = sqlite3.connect(url.split("///", 1)[1])
            database.execute("ALTER TABLE officer RENAME TO officer_gone")
            database.commit()
            database.close()
            answer = httpx.post(f"{base}/graphql", json={"query": "{ sisadaMe { role } }"},
                                headers={"authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 500, answer.text
    error = answer.json()["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["errorId"]
    assert answer.headers["cache-control"] == "no-store"
    request_id = answer.headers["x-request-id"]
    lines = [r.getMessage() for r in caplog.records if "unexpected_error" in r.getMessage()]
    assert len(lines) == 1, lines
    assert request_id in lines[0] and error["extensions"]["errorId"] in lines[0]
    assert "officer_gone" not in lines[0]  # the type of the error, not its text
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]
