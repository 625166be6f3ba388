"""All configuration, from `SISADA_*` environment variables; nothing else reads os.environ."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SISADA_", env_file=None, extra="ignore")

    # Embedded SQLite in the working directory unless told otherwise.
    database_url: str = "sqlite+aiosqlite:///./sisada.db"
    host: str = "127.0.0.1"
    port: int = 8000

    # Token verification: a shared secret (HS256), a PEM public key (RS256/ES256) or a JWKS URL.
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwks_url: str | None = None
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["HS256"])
    jwt_issuer: str = "sisada-dev"
    jwt_audience: str = "sisada"
    # Where the development signing key lives when no secret is configured.
    dev_key_file: Path = Path(".sisada-dev-key")
    dev_token_ttl_seconds: int = 12 * 3600

    # Policy files (a directory of .polar files); default: the ones shipped with the package.
    policy_dir: Path | None = None

    graphiql: bool = True
    log_level: str = "INFO"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
