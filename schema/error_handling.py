"""Errors leave the gateway with a stable code and nothing internal.

Our own errors (`CodedError`) pass as they are. GraphQL syntax and validation
errors about the document get a code. A database that cannot be reached is
`UNAVAILABLE` with a fixed message, so clients know to retry. Anything else is
unexpected: the client sees "Unexpected error." with an error id, and the server
log carries the same id with the original exception — never the client.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from typing import Any

import structlog
from graphql import GraphQLError, GraphQLObjectType, GraphQLSchema
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from resolvers.db import DatabaseUnavailableError
from schema.errors import CodedError, UnavailableError
from schema.limits import without_suggestions

# The error id, path and code as keys of the line (JSON in production), so an operator
# finds the line a client quotes by `error_id`.
log = structlog.get_logger("sisada.graphql")

_ERROR_ID = "_sisada_error_id"
UNAVAILABLE_MESSAGE = "service temporarily unavailable"


def is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None:
        return False  # a syntax or validation error about the document itself
    if _unparsable_value(error):
        return False
    return not isinstance(original, CodedError | GraphQLError)


def _unparsable_value(error: GraphQLError) -> bool:
    """A literal or variable its scalar could not parse, reported by graphql-core with the
    scalar's own exception attached: Python's `int()` refusing an Int of 5,000 digits is
    the caller's mistake, not ours. (Raised while validating, so there is no path.)"""
    return (error.path is None and isinstance(error.original_error, ValueError | TypeError)
            and error.message.startswith("Expected value of type "))


def is_unavailable(error: GraphQLError) -> bool:
    return isinstance(error.original_error, DatabaseUnavailableError)


def log_errors(errors: list[GraphQLError], _context: ExecutionContext | None = None) -> None:
    """Called by the schema with the original errors, before they are masked."""
    # The caller's own mistakes, one line per code: 5,000 bad `_entities` representations
    # in one request are one line, not 5,000 (a 40 KB request must not write 2 MB of log).
    mistakes: Counter[str] = Counter()
    first_paths: dict[str, list[Any] | None] = {}
    for error in errors:
        if is_unavailable(error):
            # One line per error, no traceback: an outage must not flood the log.
            error_id = uuid.uuid4().hex[:16]
            setattr(error, _ERROR_ID, error_id)
            log.warning("graphql.database_unavailable", error_id=error_id,
                        graphql_path=_loggable_path(error, _context),
                        cause=_cause(error.original_error))
        elif is_unexpected(error):
            error_id = uuid.uuid4().hex[:16]
            setattr(error, _ERROR_ID, error_id)
            log.error("graphql.unexpected_error", error_id=error_id,
                      graphql_path=_loggable_path(error, _context),
                      exc_info=error.original_error)
        else:
            code = str((error.extensions or {}).get("code", _document_code(error)))
            if code not in mistakes:
                first_paths[code] = _loggable_path(error, _context)
            mistakes[code] += 1
    for code, count in mistakes.items():
        log.info("graphql.error", code=code, count=count, graphql_path=first_paths[code])


def _loggable_path(error: GraphQLError, context: ExecutionContext | None) -> list[Any] | None:
    """The error's path with every alias replaced: an alias is the caller's free text (it
    could be a passport number), so a path names only schema fields and list indices."""
    if error.path is None:
        return None
    names = _field_names(context.schema._schema) if context is not None else frozenset()
    return [p if isinstance(p, int) or p in names else "(alias)" for p in error.path]


@functools.lru_cache(maxsize=8)
def _field_names(schema: GraphQLSchema) -> frozenset[str]:
    return frozenset(
        name for graphql_type in schema.type_map.values()
        if isinstance(graphql_type, GraphQLObjectType) for name in graphql_type.fields
    )


def _cause(error: BaseException | None) -> str:
    """The driver exception at the bottom of the chain, for the server log only."""
    while error is not None and error.__cause__ is not None:
        error = error.__cause__
    return "-" if error is None else f"{type(error).__name__}: {error}"


def _document_code(error: GraphQLError) -> str:
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.message.startswith("GraphQL introspection has been disabled"):
        return "INTROSPECTION_DISABLED"
    return "GRAPHQL_VALIDATION_FAILED"


class ErrorMasking(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda _error: True)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        if not is_unexpected(error):
            if error.extensions and "code" in error.extensions:
                return error
            message = error.message
            if _unparsable_value(error):
                # Not the exception's text (Python's advice on its own limits), nor the
                # 5,000-digit literal echoed back: which type, and that it did not parse.
                message = (message.split(", but encountered error", 1)[0]
                           + ", found a value it cannot parse.")
            access = getattr(self.execution_context.context, "access", None)
            if not getattr(access, "schema_hints", False):
                message = without_suggestions(message)
            return GraphQLError(message, nodes=error.nodes, source=error.source,
                                positions=error.positions, path=error.path,
                                extensions={"code": _document_code(error)})
        if is_unavailable(error):
            return _masked(error, UNAVAILABLE_MESSAGE, UnavailableError.code)
        return _masked(error, "Unexpected error.", "INTERNAL_SERVER_ERROR")


def _masked(error: GraphQLError, message: str, code: str) -> GraphQLError:
    """A fixed message and code, the error id the log carries, and nothing of the original."""
    extensions: dict[str, Any] = {"code": code}
    error_id = getattr(error, _ERROR_ID, None)
    if error_id:
        extensions["errorId"] = error_id
    return GraphQLError(message, nodes=error.nodes, source=error.source,
                        positions=error.positions, path=error.path, extensions=extensions)
