"""The gateway's upstream client for the central registry (identity, live).

resolvers/ sees it only as `resolvers.identity.IdentitySource`; the app builds one per
process with `registry_from_settings`, reports it on /readyz with `registry_status` and
closes it with `close_registry`."""

from __future__ import annotations

from gateway.registry.breaker import BreakerState
from gateway.registry.client import RegistryClient
from gateway.settings import Settings
from gateway.tracing import Tracer
from resolvers.identity import IdentitySource, UnconfiguredRegistry

__all__ = ["BreakerState", "RegistryClient", "close_registry", "registry_from_settings",
           "registry_status"]


def registry_from_settings(settings: Settings, tracer: Tracer | None = None) -> IdentitySource:
    """The HTTP client when a registry URL is configured; otherwise a source whose every
    call is unavailable (identity fields null, everything else works)."""
    if not settings.registry_url:
        return UnconfiguredRegistry()
    return RegistryClient(settings, tracer=tracer)


async def registry_status(source: IdentitySource) -> str:
    """"up", "down", "open" (the circuit is not closed: nothing is sent) or "not
    configured". Cheap under a flood of probes: see `RegistryClient.ping`."""
    if isinstance(source, RegistryClient):
        return await source.ping()
    return "not configured"


async def close_registry(source: IdentitySource) -> None:
    if isinstance(source, RegistryClient):
        await source.aclose()
