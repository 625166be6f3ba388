"""Structured logs (structlog): one stream, one line per event — and no caller's values.

One format for the whole process: "json" (one JSON object a line, the production default)
or "console" (key=value, development). The app's own events are rendered by structlog;
every other record (uvicorn's access and error lines, Python warnings, libraries) goes
through structlog's `ProcessorFormatter` on the root handler, so it is rendered by the
same renderer with the same keys. `sisada serve` hands uvicorn `uvicorn_log_config()`,
so uvicorn installs no formatter of its own. Each line of a request carries its
`request_id` (bound by gateway/request_ids.py).

A GET request carries its whole GraphQL document and variables in the query string:
`checkForeigner(documentNumber: "…")` would write a passport number into every access
log line. Log lines name the path and the parameters, never their values (SPEC rules 7
and 8): `RedactQueryStrings` rewrites every request target uvicorn logs (access lines,
WebSocket lines) before any handler sees it, whatever the log configuration. The path
itself is named only when it is one of the app's routes (`name_routes`, called by
create_app): any other path is the caller's text (`/graphql/<passport>/<name>` answers
404) and is logged as `/<unknown>`.

Libraries log values at DEBUG: aiosqlite every statement with its bound parameters,
websockets every frame, httpcore and hpack headers, python-multipart parts, uvicorn.asgi
whole messages. `SISADA_LOG_LEVEL=debug` lowers the app's own loggers only: any other
logger's records below INFO are dropped (`LibraryLevels`, on the root handler), and
SQLAlchemy's below WARNING (its INFO is the SQL echo, with parameters).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import orjson
import structlog
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["json", "console"]

# The parameters of GraphQL over HTTP; any other name is the caller's text, and hidden too.
KNOWN_PARAMETERS = frozenset({"query", "variables", "operationName", "extensions"})
REDACTED = "REDACTED"
# A request target with a query string, as uvicorn passes it to its log calls.
_TARGET = re.compile(r"(/[^?\s]*)\?(\S*)")
# Marks a record whose message structlog has already rendered (the app's own events).
_RENDERED = "sisada_rendered"
# Loggers that print request targets (uvicorn: access lines; WebSocket lines on "error").
REQUEST_LOGGERS = ("uvicorn.access", "uvicorn.error")
# A path that is none of the app's routes.
UNKNOWN_PATH = "/<unknown>"
# The app's own loggers: their DEBUG lines are ours, and carry no value (tested).
OWN_LOGGERS = frozenset({"sisada", "gateway", "schema", "resolvers", "policies"})
# The least level a library's record needs to be written, whatever SISADA_LOG_LEVEL says:
# their DEBUG output carries values (statements' parameters, frames, headers, bodies).
LIBRARY_FLOOR = logging.INFO
# SQLAlchemy's INFO is its echo: each statement and its parameters.
LIBRARY_FLOORS = {"sqlalchemy": logging.WARNING}
# Set on these loggers too, so a dropped record is not even built (aiosqlite would format
# one per statement).
CAPPED_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy", "websockets", "httpx", "httpcore",
                  "hpack", "h2", "uvicorn.error", "uvicorn.asgi", "multipart",
                  "python_multipart", "redis")


class RoutePaths:
    """The paths a log line may name: the app's routes (a route with parameters by its
    template, `/policy/sources/{name}`) and the files of its static mounts."""

    def __init__(self) -> None:
        self.exact: set[str] = set()
        self.templates: list[tuple[re.Pattern[str], str]] = []

    def add(self, routes: Iterable[BaseRoute]) -> None:
        for route in routes:
            if isinstance(route, Route | WebSocketRoute):
                if route.param_convertors:
                    self.templates.append((route.path_regex, route.path))
                else:
                    self.exact.add(route.path)
            elif isinstance(route, Mount):
                directory = getattr(route.app, "directory", None)
                if directory is not None:  # StaticFiles: its files, by name
                    self.exact.update(f"{route.path}/{file.name}"
                                      for file in Path(directory).iterdir() if file.is_file())

    def named(self, path: str) -> str:
        if path in self.exact:
            return path
        plain = unquote(path)
        if plain in self.exact:
            return plain
        for regex, template in self.templates:
            if regex.match(plain):
                return template
        return UNKNOWN_PATH


# One app per process serves (tests create several: the union of their routes).
_ROUTES = RoutePaths()


def name_routes(routes: Iterable[BaseRoute]) -> None:
    """The app's routes: the paths log lines may name (create_app)."""
    _ROUTES.add(routes)


def logged_path(path: str) -> str:
    return _ROUTES.named(path)


def redacted_target(target: str) -> str:
    """`/graphql?query=REDACTED&variables=REDACTED`: the route's path (or `/<unknown>`),
    and known parameter names."""
    path, _, query = target.partition("?")
    path = _ROUTES.named(path)
    if not query:
        return path
    names = []
    for pair in query.split("&"):
        name = pair.partition("=")[0]
        names.append(f"{name if name in KNOWN_PARAMETERS else REDACTED}={REDACTED}")
    return f"{path}?{'&'.join(names)}"


def _redacted(value: Any) -> Any:
    if isinstance(value, str) and "?" in value:
        return _TARGET.sub(lambda m: redacted_target(m.group(0)), value)
    return value


def _redacted_argument(value: Any) -> Any:
    # uvicorn passes a request target as an argument of its own: '"GET %s HTTP/%s"'.
    if isinstance(value, str) and value.startswith("/"):
        return redacted_target(value)
    return _redacted(value)


class RedactQueryStrings(logging.Filter):
    """Replaces query-string values in a record's message and arguments, and a path that
    is none of the app's routes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _RENDERED, False):
            return True  # the app's own events: rendered already (a JSON line stays whole)
        # uvicorn's lines name the target; any other library's "/…" is a file, say.
        redact = _redacted_argument if record.name in REQUEST_LOGGERS else _redacted
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: redact(arg) for key, arg in record.args.items()}
        record.msg = _redacted(record.msg)
        return True


class LibraryLevels(logging.Filter):
    """On the root handler: a library's record below its floor is dropped (DEBUG lines
    carry values: see the module's docstring); the app's own loggers are not floored."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        package = record.name.partition(".")[0]
        if package in OWN_LOGGERS:
            return True
        return record.levelno >= LIBRARY_FLOORS.get(package, LIBRARY_FLOOR)


def cap_library_levels(level: str) -> None:
    """The libraries' loggers no lower than their floor (the filter is the guarantee; this
    saves building the records it would drop)."""
    wanted = logging.getLevelName(level.upper())
    wanted = wanted if isinstance(wanted, int) else logging.INFO
    for name in CAPPED_LOGGERS:
        floor = LIBRARY_FLOORS.get(name.partition(".")[0], LIBRARY_FLOOR)
        logging.getLogger(name).setLevel(max(wanted, floor))


_LEADING_KEYS = ("timestamp", "level", "logger", "event", "request_id")


def _json_line(_logger: WrappedLogger, _method: str, event: EventDict) -> str:
    """One JSON object: the keys every line has first, in a fixed order."""
    ordered = {key: event.pop(key) for key in _LEADING_KEYS if key in event}
    ordered.update(event)
    return orjson.dumps(ordered, default=repr).decode()


def _renderer(log_format: LogFormat) -> Processor:
    if log_format == "json":
        return _json_line
    return structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"])


def _to_stdlib(_logger: WrappedLogger, _method: str, rendered: str | EventDict) -> Any:
    """The last processor of the app's events: the rendered line, marked as such, to the
    stdlib logger (caplog and any handler see the same text the stream does)."""
    return (rendered,), {"extra": {_RENDERED: True}}


# uvicorn's access line: '%s - "%s %s HTTP/%s" %d' (client, method, target, version, status).
_ACCESS_ARGS = 5


def _access_fields(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """uvicorn's access lines with their parts as keys too (the target already redacted)."""
    args = event.pop("positional_args", None)
    record = event.get("_record")
    if (record is not None and record.name == "uvicorn.access" and isinstance(args, tuple)
            and len(args) == _ACCESS_ARGS):
        _client, method, target, _version, status = args
        event.update(method=method, path=target, status=status)
    return event


class LineFormatter(structlog.stdlib.ProcessorFormatter):
    """The root handler's formatter: the app's events pass as rendered; any other record
    is rendered here, with the request id bound for the request it belongs to."""

    def __init__(self, log_format: LogFormat = "console") -> None:
        timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
        super().__init__(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.format_exc_info, _renderer(log_format)],
            foreign_pre_chain=[structlog.contextvars.merge_contextvars,
                               structlog.stdlib.add_log_level,
                               structlog.stdlib.add_logger_name, timestamper, _access_fields],
            pass_foreign_args=True,
        )

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, _RENDERED, False):
            return record.getMessage()
        return super().format(record)


def log_handler(log_format: LogFormat) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(log_format))
    handler.addFilter(RedactQueryStrings())
    handler.addFilter(LibraryLevels())
    return handler


def uvicorn_log_config(level: str, log_format: LogFormat) -> dict[str, Any]:
    """uvicorn's `log_config`: its loggers hand their records to the root handler (this
    module's formatter), with their request targets redacted; no formatter of uvicorn's."""
    request_logger = {"handlers": [], "propagate": True, "filters": ["redact"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactQueryStrings},
                    "library_levels": {"()": LibraryLevels}},
        "formatters": {"line": {"()": LineFormatter, "log_format": log_format}},
        "handlers": {"stream": {"class": "logging.StreamHandler", "formatter": "line",
                                "filters": ["redact", "library_levels"],
                                "stream": "ext://sys.stderr"}},
        "loggers": {"uvicorn": {"handlers": [], "propagate": True, "level": level.upper()},
                    **{name: request_logger for name in REQUEST_LOGGERS}},
        "root": {"handlers": ["stream"], "level": level.upper()},
    }


def configure_logging(level: str = "INFO", log_format: LogFormat = "console") -> None:
    root = logging.getLogger()
    if not root.handlers:
        # As logging.basicConfig: a process that configured its own handlers (uvicorn's
        # log_config, a test's capture) keeps them.
        root.addHandler(log_handler(log_format))
        root.setLevel(level.upper())
    # Python's warnings are lines of the same stream, not bare text on stderr.
    logging.captureWarnings(True)
    # After uvicorn's own set-up (it sets uvicorn.error to --log-level).
    cap_library_levels(level)
    # On the loggers themselves: uvicorn's dictConfig replaces their handlers, not filters.
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
            logger.addFilter(RedactQueryStrings())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _renderer(log_format),
            _to_stdlib,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Not cached: an app created later in the same process (tests) with another format
        # renders in its own. A log call is not on any per-field path.
        cache_logger_on_first_use=False,
    )


log = structlog.get_logger("sisada")
