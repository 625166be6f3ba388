"""The access trail (SPEC rule 6): an append-only, hash-chained record of identity reads.

Each entry names who read which fields of which records of one type in one request, and
why — never a value; its records are narrow rows of their own, covered by its hash.
Entries are chained in `seq` order (`chain`), written one batch per transaction under a
lock that every process sharing the database respects (`locking`, `append`), verified a
chunk at a time (`verify`), pruned by prefix with a chained prune entry (`prune`), and read
one row per record read, by page or by record (`read`).
"""

from __future__ import annotations

from resolvers.trail.append import (
    append_entries,
    append_postgresql_direct,
    append_records,
    append_sqlite_blocking,
)
from resolvers.trail.chain import GENESIS, TrailEntry, TrailRecord, TrailWriteError, entries_of
from resolvers.trail.prune import Pruned, prune
from resolvers.trail.read import (
    CURSOR_KIND,
    TrailFilter,
    entries_about_foreigner,
    entries_for_record,
    entry_dict,
    trail_page,
    trail_position,
)
from resolvers.trail.verify import VerifyResult, verify_chain

__all__ = [
    "CURSOR_KIND",
    "GENESIS",
    "Pruned",
    "TrailEntry",
    "TrailFilter",
    "TrailRecord",
    "TrailWriteError",
    "VerifyResult",
    "append_entries",
    "append_postgresql_direct",
    "append_records",
    "append_sqlite_blocking",
    "entries_about_foreigner",
    "entries_for_record",
    "entries_of",
    "entry_dict",
    "prune",
    "trail_page",
    "trail_position",
    "verify_chain",
]
