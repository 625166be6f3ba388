"""Start-up checks of the development defaults (SISADA_ENVIRONMENT).

Every default that makes the gateway easy to try is a risk on a real deployment: the
development signing key, GraphiQL, open introspection. In production these refuse the
start-up unless each is allowed by its own setting; the others (SQLite, rate limits
counted per process, no registry credential, an open /metrics, a CORS wildcard) and
every allowed one are logged as one warning each, in both modes, so an operator reading
the start-up log sees every default still in use.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.logging import log
from gateway.settings import Settings


class ProductionSettingsError(ValueError):
    """A production start-up with a development default not explicitly allowed. The message
    names settings only, never their values."""


@dataclass(frozen=True)
class DevelopmentDefault:
    """One development default in use: what it is, and (for those production refuses) the
    setting that allows it anyway."""

    setting: str
    message: str
    allow_setting: str | None = None
    allowed: bool = False


def development_defaults(settings: Settings) -> list[DevelopmentDefault]:
    """The development defaults `settings` still uses, refusable ones first."""
    found: list[DevelopmentDefault] = []
    if not (settings.jwt_secret or settings.jwt_public_key or settings.jwks_url):
        found.append(DevelopmentDefault(
            "SISADA_JWT_SECRET",
            "tokens are verified with the development key file (SISADA_DEV_KEY_FILE), which "
            "`sisada token` signs with; set SISADA_JWT_SECRET, SISADA_JWT_PUBLIC_KEY or "
            "SISADA_JWKS_URL",
            "SISADA_ALLOW_DEV_KEY_IN_PRODUCTION", settings.allow_dev_key_in_production))
    if settings.graphiql:
        found.append(DevelopmentDefault(
            "SISADA_GRAPHIQL", "GraphiQL is served on /graphql (SISADA_GRAPHIQL=false)",
            "SISADA_ALLOW_GRAPHIQL_IN_PRODUCTION", settings.allow_graphiql_in_production))
    if settings.introspection == "on":
        found.append(DevelopmentDefault(
            "SISADA_INTROSPECTION",
            "introspection is open to anonymous callers (SISADA_INTROSPECTION=authenticated "
            "or off)",
            "SISADA_ALLOW_INTROSPECTION_IN_PRODUCTION",
            settings.allow_introspection_in_production))
    if settings.database_url.startswith("sqlite"):
        found.append(DevelopmentDefault(
            "SISADA_DATABASE_URL",
            "the database is an embedded SQLite file (one office box); production runs on "
            "PostgreSQL"))
    if settings.rate_limits_enabled and not settings.redis_url:
        found.append(DevelopmentDefault(
            "SISADA_REDIS_URL",
            "rate limits are counted in this process only: replicas do not share them"))
    if not settings.registry_url:
        found.append(DevelopmentDefault(
            "SISADA_REGISTRY_URL", "no central registry: identity fields are null"))
    elif not settings.registry_token:
        found.append(DevelopmentDefault(
            "SISADA_REGISTRY_TOKEN", "the registry is called without a service credential"))
    if settings.metrics_token is None:
        found.append(DevelopmentDefault(
            "SISADA_METRICS_TOKEN",
            "/metrics answers anyone who reaches the port (set SISADA_METRICS_TOKEN, or keep "
            "the port on the monitoring network only)"))
    if "*" in settings.cors_allow_origins:
        found.append(DevelopmentDefault(
            "SISADA_CORS_ALLOW_ORIGINS", "CORS allows every browser origin (*)"))
    return found


def check_start_up(settings: Settings) -> None:
    """Refuse a production start-up with a refusable default not allowed: one line naming
    each setting and its override."""
    if settings.environment != "production":
        return
    refused = [item for item in development_defaults(settings)
               if item.allow_setting and not item.allowed]
    if refused:
        reasons = "; ".join(f"{item.setting}: {item.message}, or allow it with "
                            f"{item.allow_setting}=true" for item in refused)
        raise ProductionSettingsError(
            f"SISADA_ENVIRONMENT=production refuses to start: {reasons}")


def warn_development_defaults(settings: Settings) -> None:
    """One warning per development default in use (logged once the app is built, so a
    start-up that fails for another reason says only why)."""
    for item in development_defaults(settings):
        log.warning("gateway.development_default", environment=settings.environment,
                    setting=item.setting, detail=item.message)
