"""The access trail (SPEC rule 6): an append-only, hash-chained record of identity reads.

Each entry names who read which fields of which record, and why — never a value. Entries
are chained in `seq` order (`chain`), written one batch per transaction under a lock that
every process sharing the database respects (`locking`, `append`), verified a chunk at a
time (`verify`), pruned by prefix with a chained prune entry (`prune`), and read by page or
by record (`read`).
"""

from __future__ import annotations

from resolvers.trail.append import append_records
from resolvers.trail.chain import GENESIS, TrailRecord, TrailWriteError
from resolvers.trail.prune import prune
from resolvers.trail.read import (
    CURSOR_KIND,
    TrailFilter,
    entries_about_foreigner,
    entries_for_record,
    entry_dict,
    trail_page,
)
from resolvers.trail.verify import VerifyResult, verify_chain

__all__ = [
    "CURSOR_KIND",
    "GENESIS",
    "TrailFilter",
    "TrailRecord",
    "TrailWriteError",
    "VerifyResult",
    "append_records",
    "entries_about_foreigner",
    "entries_for_record",
    "entry_dict",
    "prune",
    "trail_page",
    "verify_chain",
]
