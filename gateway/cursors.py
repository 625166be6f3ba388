"""Keys derived from the gateway's secret: pagination cursors (resolvers.paging.CursorSeal)
and the access trail's document hashes.

`SISADA_CURSOR_SECRET` when set (production: one value shared by every replica), else
the token secret — `SISADA_JWT_SECRET` or the development key file — so that a gateway
started from the README pages without configuration. The secret is never used as is:
HKDF derives a key for cursors alone, so a cursor key reveals nothing of the token key.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.auth import dev_secret
from gateway.settings import Settings
from resolvers.paging import CursorSeal


def cursor_key(settings: Settings) -> bytes:
    return _derived(settings, b"sisada pagination cursors v1", CursorSeal.KEY_BYTES)


def _derived(settings: Settings, purpose: bytes, length: int) -> bytes:
    """A key for one purpose only, from the gateway's secret."""
    secret = settings.cursor_secret or dev_secret(settings)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose)
    return hkdf.derive(secret.encode())


def trail_document_key(settings: Settings) -> bytes:
    """The key of the access trail's document hashes (gateway/access_trail.py), derived
    from the same secret for its own purpose: replicas sharing the secret hash alike."""
    return _derived(settings, b"sisada access trail document hash v1", 32)
