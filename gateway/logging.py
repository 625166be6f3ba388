"""Structured logs (structlog), one JSON-ish line per event — and no caller's values.

A GET request carries its whole GraphQL document and variables in the query string:
`checkForeigner(documentNumber: "…")` would write a passport number into every access
log line. Log lines name the path and the parameters, never their values (SPEC rules 7
and 8): `RedactQueryStrings` rewrites every request target uvicorn logs (access lines,
WebSocket lines) before any handler sees it, whatever the log configuration.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import structlog

# The parameters of GraphQL over HTTP; any other name is the caller's text, and hidden too.
KNOWN_PARAMETERS = frozenset({"query", "variables", "operationName", "extensions"})
REDACTED = "REDACTED"
# A request target with a query string, as uvicorn passes it to its log calls.
_TARGET = re.compile(r"(/[^?\s]*)\?(\S*)")
# Loggers that print request targets (uvicorn: access lines; WebSocket lines on "error").
REQUEST_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redacted_target(target: str) -> str:
    """`/graphql?query=REDACTED&variables=REDACTED`: the path, and known parameter names."""
    path, _, query = target.partition("?")
    if not query:
        return target
    names = []
    for pair in query.split("&"):
        name = pair.partition("=")[0]
        names.append(f"{name if name in KNOWN_PARAMETERS else REDACTED}={REDACTED}")
    return f"{path}?{'&'.join(names)}"


def _redacted(value: Any) -> Any:
    if isinstance(value, str) and "?" in value:
        return _TARGET.sub(lambda m: redacted_target(m.group(0)), value)
    return value


class RedactQueryStrings(logging.Filter):
    """Replaces query-string values in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted(arg) for key, arg in record.args.items()}
        record.msg = _redacted(record.msg)
        return True


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", level=level.upper())
    # On the loggers themselves: uvicorn's dictConfig replaces their handlers, not filters.
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
            logger.addFilter(RedactQueryStrings())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


log = structlog.get_logger("sisada")
