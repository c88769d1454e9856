"""The record event kinds and the shape of their bodies.

record.created / record.updated / record.deleted
    {"id", "type", "clock", "fields": {path: value | null}}  (null clears a field;
    deletion sets the reserved field "deleted", so it can be undone and merges like any
    other edit)
record.linked
    {"src", "src_type", "rel", "dst", "present": bool, "attrs": {...}, "clock"}
vocab.term_added
    {"vocabulary", "term", "ar", "en", "clock"}
records.imported
    {"file", "sha256", "type", "changes": [{"op": "created" | "updated", "line", "id",
    "type", "clock", "fields"}, ...]}: up to IMPORT_BATCH rows of one imported file in one
    signed event. The event itself says which file (by its SHA-256) and which line each
    record came from; signing rows in batches, not one by one, is what lets a list of
    100,000 victims import in seconds.

Every body carries its hybrid-logical-clock stamp; the signing device breaks ties. An
optional "user" names the account that made the change (the web app sets it).
"""

from __future__ import annotations

RECORD_CREATED = "record.created"
RECORD_UPDATED = "record.updated"
RECORD_DELETED = "record.deleted"
RECORD_LINKED = "record.linked"
VOCAB_TERM_ADDED = "vocab.term_added"
RECORDS_IMPORTED = "records.imported"
IMPORT_BATCH = 200

RECORD_KINDS = frozenset({RECORD_CREATED, RECORD_UPDATED, RECORD_DELETED})
ALL_KINDS = RECORD_KINDS | {RECORD_LINKED, VOCAB_TERM_ADDED, RECORDS_IMPORTED}
