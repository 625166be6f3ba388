"""A stand-in for the Directorate General of Immigration's central registry.

A real, separate Federation v2 subgraph process over its own database, holding identity
(names, passport and permit document numbers, birth dates, photos, sponsors' names) keyed by
registry id. The gateway depends only on the wire contract in resolvers/identity.py, so the
real registry replaces this one by configuration (`SISADA_REGISTRY_URL`).
"""

from __future__ import annotations

from examples.registry.app import create_registry_app
from examples.registry.store import (
    RegistryNotEmptyError,
    delete_identities,
    migrate_registry,
    registry_is_empty,
    write_identities,
)

__all__ = [
    "RegistryNotEmptyError",
    "create_registry_app",
    "delete_identities",
    "migrate_registry",
    "registry_is_empty",
    "write_identities",
]
