"""All configuration, from `SISADA_*` environment variables; nothing else reads os.environ."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from jwt.algorithms import get_default_algorithms
from limits import parse_many
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The default PostgreSQL statement timeout never falls below this, however short the
# request timeout: statements stopped by the server surface as errors, not as TIMEOUT.
MIN_DEFAULT_STATEMENT_TIMEOUT_SECONDS = 5.0
# OTEL_TRACES_EXPORTER's values this gateway ships (OTLP over HTTP/protobuf).
TRACE_EXPORTERS = frozenset({"otlp", "console", "none"})
# SISADA_LOG_LEVEL's values (uvicorn's names, upper-cased; "TRACE" is uvicorn's own).
LOG_LEVELS = frozenset({"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"})
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def _listed(value: Any) -> Any:
    """A list setting from the environment: a JSON list, or comma-separated words (as
    SISADA_TRUSTED_PROXIES); an empty value is the empty list."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError("not a JSON list (or give comma-separated values)") from exc
    return [item.strip() for item in text.split(",") if item.strip()]


# A list read from the environment by `_listed`, not by pydantic-settings' JSON decoder
# (whose failure is a SettingsError traceback, not a line naming the setting).
EnvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SISADA_", env_file=None, extra="ignore")

    # Embedded SQLite in the working directory unless told otherwise.
    database_url: str = "sqlite+aiosqlite:///./sisada.db"
    # SQLite: how often the write-ahead log is folded into the database, off the request path.
    sqlite_checkpoint_seconds: float = Field(default=2.0, gt=0)
    # PostgreSQL: a statement running longer than this is cancelled by the server (the
    # request's own timeout stops the caller's wait; this stops the server's work, e.g. when
    # the cancellation never reached it). Unset: request_timeout_seconds, at least
    # MIN_DEFAULT_STATEMENT_TIMEOUT_SECONDS. 0: no limit.
    database_statement_timeout_seconds: float | None = Field(default=None, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65_535)

    # "production" refuses to start with the development key, GraphiQL or open
    # introspection unless each is allowed below (gateway/production.py); both modes log a
    # warning per development default in use.
    environment: Literal["development", "production"] = "development"
    allow_dev_key_in_production: bool = False
    allow_graphiql_in_production: bool = False
    allow_introspection_in_production: bool = False

    # Token verification: a shared secret (HS256), a PEM public key (RS256/ES256) or a JWKS URL.
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwks_url: str | None = None
    # A JSON list or comma-separated. With a public key or a JWKS URL, an HMAC algorithm (HS*)
    # refuses the start-up (gateway/auth.py: algorithm confusion).
    jwt_algorithms: EnvList = Field(default_factory=lambda: ["HS256"], min_length=1)
    jwt_issuer: str = "sisada-dev"
    jwt_audience: str = "sisada"
    # Where the development signing key lives when no secret is configured.
    dev_key_file: Path = Path(".sisada-dev-key")
    dev_token_ttl_seconds: int = Field(default=12 * 3600, gt=0)
    # The longest a token may live (`exp` after `iat`, and `exp` after now): a longer-lived
    # token is refused, whoever signed it.
    max_token_lifetime_seconds: int = Field(default=12 * 3600, gt=0)
    # Clock skew tolerated between the token issuer and this gateway (exp, nbf, iat).
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # How long the officer named by a token's `officer_id` is remembered (id → kind)
    # before the officer table is asked again.
    officer_cache_seconds: float = Field(default=60.0, ge=0)

    # Policy files (a directory of .polar files); default: the ones shipped with the package.
    policy_dir: Path | None = None

    graphiql: bool = True
    # Demo mode (`sisada demo` turns it on): GraphiQL's role picker fetches a token per role
    # of the policy from /graphiql/demo-tokens. Served only with GraphiQL on, in the
    # development environment, on the development key (gateway/demo_tokens.py); else 404.
    demo_tokens: bool = False
    # /policy (the access matrix and the .polar sources) for every caller, not only the
    # roles the policy's `allow_policy_page` names: the policy is not secret.
    policy_page_public: bool = False
    # The gateway's own loggers' level; libraries stay at INFO or above (gateway/logging.py).
    # DEBUG, INFO, WARNING, ERROR or CRITICAL (any case).
    log_level: str = "INFO"
    # Log lines (gateway/logging.py), uvicorn's access and error lines included: "json" (one
    # JSON object a line) or "console" (key=value). Unset: json in production, else console.
    log_format: Literal["json", "console"] | None = None

    # -- traces (OpenTelemetry, gateway/tracing.py): the standard OTEL_* variables, unprefixed.
    # Off unless an exporter or an OTLP endpoint is named; OTEL_SDK_DISABLED=true turns them
    # off whatever else is set. The OTLP exporter reads its other OTEL_EXPORTER_OTLP_* itself.
    otel_sdk_disabled: bool = Field(
        default=False, validation_alias=AliasChoices("OTEL_SDK_DISABLED", "otel_sdk_disabled"))
    # otlp (HTTP/protobuf), console, or none; comma-separated.
    otel_traces_exporter: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_TRACES_EXPORTER", "otel_traces_exporter"))
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT",
                                                    "otel_exporter_otlp_endpoint"))
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                                    "otel_exporter_otlp_traces_endpoint"))
    otel_service_name: str = Field(
        default="sisada-gateway", validation_alias=AliasChoices("OTEL_SERVICE_NAME",
                                                                "otel_service_name"))

    # -- /metrics (Prometheus; gateway/metrics.py) --
    # A bearer token /metrics asks for (compared in constant time); unset, /metrics is open.
    # Set but empty is refused (a forgotten secret must not leave /metrics open silently).
    metrics_token: SecretStr | None = None
    # Distinct operation names a process labels, taken by authenticated callers only (an
    # anonymous caller's name is labelled only if it holds a slot); later ones are "other".
    metrics_max_operation_names: int = Field(default=100, ge=0, le=1000)
    # prometheus-client's multiprocess directory (its own variable, PROMETHEUS_MULTIPROC_DIR,
    # read by prometheus-client too): `sisada serve --workers N` sets a temporary one.
    metrics_multiproc_dir: Path | None = Field(
        default=None, validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR",
                                                    "metrics_multiproc_dir"))

    # -- query limits: no real frontend query reaches them, every flood does --
    max_query_depth: int = Field(default=12, ge=1)
    # 0: no aliases at all.
    max_aliases: int = Field(default=30, ge=0)
    # Estimated before execution: fields selected, lists multiplied by the rows they can
    # return, awaited fields weighing 20 (schema/cost.py). Per request (a batch adds up).
    # GraphiQL's introspection query is counted at its worst (every type as large as the
    # largest): 201,144 for this schema, so the default leaves room above it.
    max_query_cost: int = Field(default=250_000, ge=1)
    # Fields resolved per request, counted during execution: the estimate's backstop.
    max_response_fields: int = Field(default=200_000, ge=1)
    # Bytes of text values per request (one field may carry kilobytes; aliases repeat it).
    max_response_text_bytes: int = Field(default=10_000_000, ge=1)
    # Lexical tokens the parser reads before giving up.
    max_tokens: int = Field(default=4000, ge=1)
    max_document_bytes: int = Field(default=20_000, ge=1)
    max_batch_operations: int = Field(default=10, ge=1)
    request_timeout_seconds: float = Field(default=15.0, gt=0)
    # SIGTERM/SIGINT: new connections are refused, live feeds close with 1001 (going away)
    # and requests in flight get this long to finish (their trail entries written) before
    # they are cancelled. Above request_timeout_seconds, every request can finish.
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=600)
    # HTTP request bodies larger than this are refused before they are parsed.
    max_body_bytes: int = Field(default=256_000, ge=1)
    # JSON request bodies (and GET `variables`) nested deeper than this are refused.
    max_json_depth: int = Field(default=32, ge=1)

    # "on" (development), "authenticated" (any verified token) or "off".
    introspection: Literal["on", "authenticated", "off"] = "on"

    # Seals pagination cursors (gateway/cursors.py); replicas must share it. Unset: derived
    # from the token secret (jwt_secret or the development key file).
    cursor_secret: str | None = None

    # Browser origins allowed to call the API (CORS), a JSON list or comma-separated; empty
    # means same-origin only.
    cors_allow_origins: EnvList = Field(default_factory=list)

    # Rate limits (the `limits` notation: "N/second|minute|hour", several joined by ";",
    # checked at start-up). Shared through Redis when redis_url (redis://, rediss:// or
    # unix://) is set, so replicas count together; in memory otherwise.
    redis_url: str | None = None
    rate_limits_enabled: bool = True
    rate_limit_per_principal: str = "600/minute"
    rate_limit_per_ip: str = "1200/minute"
    rate_limit_submit_report: str = "5/minute;30/hour"
    # `reportStatus` look-ups (each root field, aliases included) per client IP: the
    # online guessing rate of receipt codes (SECURITY.md has the arithmetic).
    rate_limit_report_status: str = "20/minute;200/hour;1000/day"
    # Namespace of the rate-limit keys in Redis (replicas that share counts share it).
    rate_limit_key_prefix: str = "sisada-rate-limits"

    # Proxies and routers whose X-Forwarded-For is believed (comma-separated addresses or
    # networks, as uvicorn's --forwarded-allow-ips); none by default, so uvicorn's habit of
    # trusting 127.0.0.1 never applies silently. SISADA_FORWARDED_ALLOW_IPS is the old name.
    trusted_proxies: str = Field(
        default="", validation_alias=AliasChoices("SISADA_TRUSTED_PROXIES",
                                                  "SISADA_FORWARDED_ALLOW_IPS",
                                                  "trusted_proxies", "forwarded_allow_ips"))

    # -- the central registry: identity, reached live as a Federation v2 subgraph --
    # Its /graphql endpoint; unset, identity fields are null with UPSTREAM_UNAVAILABLE.
    registry_url: str | None = None
    # The gateway's service credential, sent as a bearer token (never the caller's token).
    registry_token: str | None = None
    registry_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    registry_read_timeout_seconds: float = Field(default=3.0, gt=0)
    # The whole of one upstream call, retries included.
    registry_total_timeout_seconds: float = Field(default=5.0, gt=0)
    # Attempts of an idempotent read (the first one included), with jittered back-off.
    registry_attempts: int = Field(default=3, ge=1, le=10)
    # Consecutive failed calls that open the circuit, and how long it stays open.
    registry_breaker_failures: int = Field(default=5, ge=1)
    registry_breaker_reset_seconds: float = Field(default=10.0, gt=0)
    # How long /readyz reuses the registry ping's answer (concurrent probes share one ping).
    registry_status_cache_seconds: float = Field(default=2.0, ge=0)
    # Representations in one upstream `_entities` request; more are split into chunks.
    registry_max_representations: int = Field(default=1000, ge=1, le=5000)
    registry_max_connections: int = Field(default=20, ge=1)
    # The stand-in registry's own database (`sisada registry serve`, `migrate`, `seed`).
    registry_database_url: str = "sqlite+aiosqlite:///./registry.db"

    # -- the access trail (SPEC rule 6; resolvers/trail) --
    trail_enabled: bool = True
    # The whole of one request's trail write, lock wait included; past it the identity
    # fields of that response are withheld (fail closed), the rest is answered.
    trail_write_timeout_seconds: float = Field(default=2.0, gt=0)
    # How long entries are kept before `sisada trail prune` removes them: five years
    # (1,826 days), the longest permit supervised (a KITAP runs five years). UU 27/2022 fixes
    # no period: the controller records its processing (Art. 31) and ends, deletes or
    # destroys data at the end of its retention period, by the archive retention schedule
    # (Art. 42-44). Set it to the office's records schedule.
    trail_retention_days: int = Field(default=1826, ge=1)

    # -- live feeds: subscriptions over WebSocket (graphql-transport-ws) on /graphql --
    # How events reach every replica: "memory" (this process only: one gateway, the SQLite
    # demo), "redis" (pub/sub on redis_url) or "postgres" (LISTEN/NOTIFY on the database).
    # Unset: redis when redis_url is set, else postgres on a PostgreSQL database, else memory.
    event_bus: Literal["memory", "redis", "postgres"] | None = None
    # The bus channel (replicas that share events share it).
    event_channel: str = Field(default="sisada_events", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    # The outbox is read at least this often even without a message on the bus: an event
    # whose publish was lost (a crash between commit and publish, a bus outage) is late by
    # at most this, never lost.
    event_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # Outbox rows read per statement by the relay and by a replay.
    event_batch_size: int = Field(default=500, ge=1, le=10_000)
    # `after:` replays at most this many events of the feed; further back is refused
    # (REPLAY_TOO_LONG): subscribe without `after` and query the history instead.
    event_replay_max: int = Field(default=10_000, ge=0, le=1_000_000)
    # The client must send connection_init within this time (else close 4408).
    ws_init_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # The server pings every this many seconds; a client silent for three of them is gone.
    ws_keepalive_seconds: float = Field(default=15.0, gt=0, le=600)
    # A client message larger than this closes the socket (1009).
    ws_max_message_bytes: int = Field(default=64_000, ge=1024, le=10_000_000)
    ws_max_subscriptions_per_socket: int = Field(default=20, ge=1, le=1000)
    # Open sockets per principal (issuer and subject; the anonymous per client address),
    # and in all, per replica.
    ws_max_sockets_per_principal: int = Field(default=16, ge=1)
    ws_max_sockets: int = Field(default=10_000, ge=1)
    # Frames and bytes waiting to be sent to one socket: a client that reads slower than
    # events arrive is closed (4413) when either is exceeded, or when one frame takes
    # longer than ws_send_timeout_seconds to leave; memory per socket stays bounded.
    ws_send_queue_frames: int = Field(default=256, ge=1)
    ws_send_queue_bytes: int = Field(default=4_000_000, ge=1024)
    ws_send_timeout_seconds: float = Field(default=10.0, gt=0)

    # -- persisted operations (gateway/persisted): APQ and partner allow-lists --
    # Automatic Persisted Queries (Apollo's extensions.persistedQuery): "off" answers
    # PERSISTED_QUERY_NOT_SUPPORTED (registered operations of allow-lists still run).
    apq: Literal["on", "off"] = "on"
    # Without redis_url: documents kept in this process's LRU (each at most
    # max_document_bytes).
    apq_cache_size: int = Field(default=1000, ge=1, le=100_000)
    # With redis_url: how long a stored document lives after it was last registered.
    apq_ttl_seconds: int = Field(default=86_400, ge=1)
    # Namespace of the APQ keys in Redis (replicas that share documents share it).
    apq_key_prefix: str = "sisada-apq"
    # How long a gateway reuses a client's mode and registered operations: changes made
    # with `sisada operations` take effect within this many seconds (0: read per request).
    operations_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # Registered operations per client (`sisada operations add` refuses more).
    operations_max_per_client: int = Field(default=500, ge=1, le=10_000)

    @field_validator("jwt_algorithms", "cors_allow_origins", mode="before")
    @classmethod
    def _env_list(cls, value: Any) -> Any:
        return _listed(value)

    @field_validator("jwt_algorithms")
    @classmethod
    def _known_algorithms(cls, value: list[str]) -> list[str]:
        known = set(get_default_algorithms()) | {"none"}
        unknown = [alg for alg in value if alg not in known]
        if unknown:
            # No value is quoted back (a secret pasted into the wrong variable stays unseen).
            raise ValueError("names an unknown algorithm (e.g. RS256, ES256, HS256; a JSON "
                             "list or comma-separated)")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.strip().upper() not in LOG_LEVELS:
            raise ValueError("DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.strip().upper()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        # The URL may hold a password: the message never quotes it.
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in REDIS_SCHEMES or not (
                parts.hostname if parts.scheme != "unix" else parts.path):
            raise ValueError("not a Redis URL (e.g. redis://127.0.0.1:6379/0, rediss://… "
                             "or unix:///path/to/redis.sock)")
        return value

    @field_validator("rate_limit_per_principal", "rate_limit_per_ip", "rate_limit_submit_report",
                     "rate_limit_report_status")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError("not a rate limit in the `limits` notation (e.g. 600/minute or "
                             "5/minute;30/hour)") from exc
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("empty: set a token, or unset it to leave /metrics open")
        return value

    @field_validator("metrics_multiproc_dir")
    @classmethod
    def _multiproc_dir(cls, value: Path | None) -> Path | None:
        # prometheus-client writes a file per metric and process there on the first request.
        if value is not None and not (value.is_dir() and os.access(value, os.W_OK | os.X_OK)):
            raise ValueError("not a directory this process may write (create it, or unset it: "
                             "`sisada serve --workers N` makes its own)")
        return value

    @field_validator("otel_traces_exporter")
    @classmethod
    def _known_exporters(cls, value: str | None) -> str | None:
        if value is not None and not TRACE_EXPORTERS.issuperset(
                name.strip() for name in value.split(",")):
            raise ValueError("otlp, console or none (comma-separated)")
        return value

    @property
    def log_format_in_force(self) -> Literal["json", "console"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.environment == "production" else "console"

    @property
    def statement_timeout_seconds(self) -> float:
        """The PostgreSQL statement timeout in force (0: none)."""
        if self.database_statement_timeout_seconds is None:
            # A backstop behind the request's own timeout, never in front of it: the request
            # stops first (TIMEOUT) and the server's work ends soon after.
            return max(self.request_timeout_seconds, MIN_DEFAULT_STATEMENT_TIMEOUT_SECONDS)
        return self.database_statement_timeout_seconds


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
