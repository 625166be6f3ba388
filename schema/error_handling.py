"""Errors leave the gateway with a stable code and nothing internal.

Our own errors (`CodedError`) pass as they are. GraphQL syntax and validation
errors about the document get a code. Anything else is unexpected: the client
sees "Unexpected error." with an error id, and the server log carries the same
id with the original exception — never the client.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from schema.errors import CodedError

log = logging.getLogger("sisada.graphql")

_ERROR_ID = "_sisada_error_id"


def is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None:
        return False  # a syntax or validation error about the document itself
    return not isinstance(original, CodedError | GraphQLError)


def log_errors(errors: list[GraphQLError], _context: ExecutionContext | None = None) -> None:
    """Called by the schema with the original errors, before they are masked."""
    for error in errors:
        if is_unexpected(error):
            error_id = uuid.uuid4().hex[:16]
            setattr(error, _ERROR_ID, error_id)
            log.error("graphql.unexpected_error error_id=%s path=%s", error_id, error.path,
                      exc_info=error.original_error)
        else:
            code = (error.extensions or {}).get("code", _document_code(error))
            log.info("graphql.error code=%s path=%s", code, error.path)


def _document_code(error: GraphQLError) -> str:
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    return "GRAPHQL_VALIDATION_FAILED"


class ErrorMasking(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda _error: True)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        if not is_unexpected(error):
            if error.extensions and "code" in error.extensions:
                return error
            return GraphQLError(error.message, nodes=error.nodes, source=error.source,
                                positions=error.positions, path=error.path,
                                extensions={"code": _document_code(error)})
        extensions: dict[str, Any] = {"code": "INTERNAL_SERVER_ERROR"}
        error_id = getattr(error, _ERROR_ID, None)
        if error_id:
            extensions["errorId"] = error_id
        return GraphQLError("Unexpected error.", nodes=error.nodes, source=error.source,
                            positions=error.positions, path=error.path, extensions=extensions)
