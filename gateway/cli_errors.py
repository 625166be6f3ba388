"""What the `sisada` command says when it cannot go on: one line, and an exit code.

Foreign errors (SQLAlchemy's, the drivers', the socket's, Alembic's) are translated here,
once, at the command line's boundary. A message names the setting at fault and what to do;
it never carries a password, a query string, a driver's message or a value read from the
data (a driver's message may quote a row: the SQLSTATE or SQLite code decides the words).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from alembic.util import CommandError
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from resolvers.db import DatabaseUnavailableError

# Exit codes, the same for every subcommand (README, "CLI").
OK = 0
# The command could not do its work: a database out of reach or not migrated, data already
# there, a missing key. Retrying after fixing the world may work.
FAILURE = 1
# The command line or a SISADA_* setting is wrong (argparse's own code for usage errors).
USAGE = 2

OFFICE_DATABASE = "SISADA_DATABASE_URL"
REGISTRY_DATABASE = "SISADA_REGISTRY_DATABASE_URL"
DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
URL_EXAMPLE = "e.g. sqlite+aiosqlite:///./sisada.db or postgresql+asyncpg://USER@HOST:5432/NAME"

# SQLSTATEs (PostgreSQL) worth their own words; any other is named by its code.
_SQLSTATE_REASONS = {
    "3D000": "the database does not exist: create it first (e.g. `createdb NAME`)",
    "28000": "the database refused the login (no such user, or not allowed from here)",
    "28P01": "the database refused the password",
    "42501": "the database user lacks a permission this command needs",
    "42P01": "the database is not migrated: run `sisada migrate` first",
    "53300": "the database has no connection to spare (too many clients)",
    "57P03": "the database is starting up: try again in a moment",
}
# SQLite primary result codes worth their own words.
_SQLITE_REASONS = {
    sqlite3.SQLITE_BUSY: "the SQLite file is locked by another process",
    sqlite3.SQLITE_LOCKED: "the SQLite file is locked by another process",
    sqlite3.SQLITE_READONLY: "the SQLite file is read-only",
    sqlite3.SQLITE_CANTOPEN: "cannot open the SQLite file (does its directory exist, "
                             "may it be written?)",
    sqlite3.SQLITE_NOTADB: "the file is not an SQLite database",
    sqlite3.SQLITE_CORRUPT: "the SQLite file is damaged",
    sqlite3.SQLITE_FULL: "the disk holding the SQLite file is full",
}


class CliError(Exception):
    """A mistake or failure the command reports in one line (`message`), exiting `code`."""

    def __init__(self, message: str, code: int = FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def shown(url: URL) -> str:
    """A database URL fit for a message: no password, no query string (it may hold one)."""
    return url.set(query={}).render_as_string(hide_password=True)


def database_url(setting: str, value: str) -> URL:
    """`value` parsed, or a `CliError` (usage) saying what is wrong with `setting`."""
    try:
        url = make_url(value)
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise CliError(f"{setting} is not a database URL ({URL_EXAMPLE})", USAGE) from exc
    if url.drivername not in DRIVERS:
        # The name only: the driver part of a URL holds no secret.
        raise CliError(f"{setting} names the driver {url.drivername!r}; this gateway speaks "
                       f"{' and '.join(DRIVERS)} ({URL_EXAMPLE})", USAGE)
    if url.drivername.startswith("sqlite") and not url.database:
        raise CliError(f"{setting} names no SQLite file ({URL_EXAMPLE})", USAGE)
    if url.drivername.startswith("postgresql") and not url.database:
        raise CliError(f"{setting} names no database ({URL_EXAMPLE})", USAGE)
    return url


def check_database(setting: str, value: str, *, must_exist: bool,
                   hint: str = "run `sisada migrate` first") -> URL:
    """The URL of `setting`, checked before any engine touches it.

    SQLite is looked at with the standard library first: aiosqlite, failing to open a
    file that is not a database, leaves a thread that prints a traceback at exit. A file
    that does not exist is created by the engine — fine for `migrate`, a mistake for a
    command that needs data (`must_exist`)."""
    url = database_url(setting, value)
    if not url.drivername.startswith("sqlite") or url.database == ":memory:":
        return url
    path = Path(url.database or "")
    where = f"{setting}={shown(url)}"
    if not path.exists():
        if must_exist:
            raise CliError(f"there is no database at {path.resolve()}: {hint}, or run this "
                           f"where the database is ({where})")
        if not path.resolve().parent.is_dir():
            raise CliError(f"the directory of the SQLite file does not exist "
                           f"({path.resolve().parent}; {where})")
        return url
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            conn.execute("PRAGMA schema_version")
    except sqlite3.Error as exc:
        reason = _SQLITE_REASONS.get(getattr(exc, "sqlite_errorcode", 0) & 0xFF,
                                     "cannot read the SQLite file")
        raise CliError(f"{reason} ({where})") from exc
    return url


def check_http_url(setting: str, value: str | None) -> None:
    """An upstream's URL (the registry's): http(s) with a host, else a usage error."""
    if value is None:
        return
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        ok = False
    if not ok:
        raise CliError(f"{setting} is not an http(s) URL (e.g. http://127.0.0.1:8001/graphql)",
                       USAGE)


@contextlib.contextmanager
def database_errors(setting: str, value: str) -> Iterator[None]:
    """Turns what a database says on failure into a `CliError` naming `setting`. Errors
    that are not the database's (a bug) pass unchanged: a developer needs their traceback."""
    try:
        yield
    except CliError:
        raise
    except Exception as exc:
        message = database_failure(setting, value, exc)
        if message is None:
            raise
        raise CliError(message) from exc


def database_failure(setting: str, value: str, error: BaseException) -> str | None:
    """One line for a database failure, or None when `error` is not one."""
    reason = _reason(error)
    if reason is None:
        return None
    try:
        where = shown(make_url(value))
    except (sa_exc.ArgumentError, ValueError):
        return f"{setting} is not a database URL ({URL_EXAMPLE})"
    return f"{reason} ({setting}={where})"


def _reason(error: BaseException) -> str | None:
    for current in _chain(error):
        reason = _own_reason(current)
        if reason is not None:
            return reason
    if isinstance(error, sa_exc.DBAPIError):
        return f"the database failed ({type(error.orig).__name__})"
    return None


def _own_reason(error: BaseException) -> str | None:
    if isinstance(error, socket.gaierror):
        return "the database host is unknown"
    if isinstance(error, ConnectionRefusedError):
        return "the database refused the connection (is it running, on that port?)"
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "the database did not answer in time"
    if isinstance(error, OSError) and not isinstance(error, sqlite3.Error):
        return f"cannot reach the database ({error.strerror or type(error).__name__})"
    if isinstance(error, DatabaseUnavailableError):
        return "cannot reach the database"
    if isinstance(error, sa_exc.NoSuchModuleError | sa_exc.ArgumentError):
        return f"not a database URL this gateway can use ({URL_EXAMPLE})"
    if isinstance(error, TypeError) and "unexpected keyword argument" in str(error):
        # asyncpg.connect() handed a query parameter of the URL it does not take.
        return "the URL's query string names a parameter the database driver does not take"
    if isinstance(error, CommandError):
        # Alembic names revisions only, e.g. a database migrated by a newer version.
        return f"the migration failed: {str(error).splitlines()[0]}"
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        if sqlstate in _SQLSTATE_REASONS:
            return _SQLSTATE_REASONS[sqlstate]
        if sqlstate.startswith("08") or sqlstate.startswith("57P"):
            return "the database is unavailable"
        return f"the database refused the statement (SQLSTATE {sqlstate})"
    if isinstance(error, sqlite3.Error):
        if "no such table" in str(error):
            return _SQLSTATE_REASONS["42P01"]
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _SQLITE_REASONS:
            return _SQLITE_REASONS[code & 0xFF]
        return f"the SQLite database failed ({getattr(error, 'sqlite_errorname', 'error')})"
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
