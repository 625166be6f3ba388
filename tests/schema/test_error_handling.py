"""Errors carry a stable code and nothing internal; unexpected ones get an error id that
the server log carries with the original exception."""

from __future__ import annotations

import json
import logging

import pytest
import strawberry
import structlog

from gateway.logging import configure_logging
from schema.error_handling import ErrorMasking, log_errors
from schema.errors import ForbiddenError


@strawberry.type
class Query:
    @strawberry.field
    def broken(self) -> str | None:
        raise RuntimeError("SELECT secret FROM /srv/sisada/internal.db")

    @strawberry.field
    def forbidden(self) -> str | None:
        raise ForbiddenError("not allowed to use Query.forbidden")


class LoggingSchema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:  # type: ignore[no-untyped-def]
        log_errors(errors, execution_context)


schema = LoggingSchema(query=Query, extensions=[ErrorMasking])


def test_unexpected_error_is_masked_with_an_error_id(caplog: pytest.LogCaptureFixture) -> None:
    before = structlog.get_config()
    configure_logging("INFO", "json")  # as the app does: the log's lines are JSON
    try:
        with caplog.at_level(logging.ERROR, logger="sisada.graphql"):
            result = schema.execute_sync("{ broken }")
    finally:
        structlog.configure(**before)
    assert result.errors is not None and len(result.errors) == 1
    error = result.errors[0].formatted
    assert error["message"] == "Unexpected error."
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    error_id = error["extensions"]["errorId"]
    assert "secret" not in str(error) and "/srv" not in str(error)
    logged = [json.loads(r.getMessage()) for r in caplog.records if error_id in r.getMessage()]
    assert len(logged) == 1
    # The id, the path and the original exception are keys of the server's line.
    assert logged[0]["event"] == "graphql.unexpected_error"
    assert (logged[0]["error_id"], logged[0]["graphql_path"]) == (error_id, ["broken"])
    assert "internal.db" in logged[0]["exception"]


def test_coded_errors_pass_unchanged() -> None:
    result = schema.execute_sync("{ forbidden }")
    assert result.errors is not None
    assert [e.formatted["extensions"]["code"] for e in result.errors] == ["FORBIDDEN"]
    assert result.errors[0].message == "not allowed to use Query.forbidden"


def test_validation_and_syntax_errors_get_codes() -> None:
    invalid = schema.execute_sync("{ nosuchfield }")
    assert [e.formatted["extensions"]["code"] for e in invalid.errors or []] == [
        "GRAPHQL_VALIDATION_FAILED"]
    syntax = schema.execute_sync("{ broken ")
    assert [e.formatted["extensions"]["code"] for e in syntax.errors or []] == [
        "GRAPHQL_PARSE_FAILED"]
