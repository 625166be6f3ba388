"""Client names and document hashes: the vocabulary `sisada operations`, tokens and the
gateway share."""

from __future__ import annotations

import hashlib
import re

# A client name is an identifier an operator types and a token carries: short, lowercase.
_CLIENT = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
CLIENT_NAME_RULE = "1 to 63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"


def is_client_name(name: str) -> bool:
    return _CLIENT.fullmatch(name) is not None


def is_sha256(value: str) -> bool:
    return _SHA256.fullmatch(value) is not None


def document_hash(document: str) -> str:
    """The SHA-256 of the document's UTF-8 bytes, in lowercase hex, as Apollo's clients
    compute it (`extensions.persistedQuery.sha256Hash`)."""
    return hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()
