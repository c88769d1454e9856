"""Verification records: one per item, a reasoned verdict others can audit.

The record is an ordinary ``verification`` record (``athar.records.schema``), so every
change is a signed event with history, merge and search for free. Its id is derived
from the item's id, so two verifiers on two devices working on the same item edit the
same record and their edits merge field by field instead of making two verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from athar.errors import InputError
from athar.records import events as ev
from athar.records import ids
from athar.records.service import Records, RecordView
from athar.records.store import records as records_table
from athar.records.values import Problem
from athar.vault.items import Item

TYPE = "verification"
# Short keys a verifier types (status=verified); anything else must be a field path.
ALIASES = {
    "provenance": "check.provenance",
    "location": "check.location",
    "content": "check.content",
}


def record_id(item: Item) -> str:
    return ids.derived_id(TYPE, item.id)


def _fields(raw: Mapping[str, str]) -> dict[str, str]:
    return {ALIASES.get(k.strip(), k.strip()): v for k, v in raw.items()}


def set_verdict(
    records: Records,
    item: Item,
    raw: Mapping[str, str],
    corroborating: list[Item] | None = None,
    user: str | None = None,
) -> tuple[str, bool]:
    """Create or update the item's verification record; link corroborating items.
    Returns the record id and whether anything changed. Nothing is written if any
    field is invalid (one transaction per change set)."""
    if item.shredded:
        raise InputError("item {id} was destroyed (crypto-shredded)", id=item.short_id)
    fields = _fields(raw)
    if "item" in fields and fields["item"] != item.id:
        raise InputError("the item of a verification record cannot be changed")
    if any(other.id == item.id for other in corroborating or []):
        raise InputError("an item cannot corroborate itself")  # before anything is written
    rid = record_id(item)
    changed = False
    if records.exists(rid):
        body = records.prepare_update(rid, fields, user)
        if body is not None:
            records.commit([(ev.RECORD_UPDATED, body)])
            changed = True
    else:
        if "status" not in fields:
            fields["status"] = "unverified"
        fields["item"] = item.id
        _, body = records.prepare_create(TYPE, fields, record_id=rid, user=user)
        records.commit([(ev.RECORD_CREATED, body)])
        changed = True
    for other in corroborating or []:
        changed |= records.link(rid, "corroborating", other.id, user=user)
    return rid, changed


def get(records: Records, item: Item) -> RecordView | None:
    rid = record_id(item)
    return records.get(rid) if records.exists(rid) else None


def queue(records: Records, status: str | None = None) -> list[dict[str, Any]]:
    """Verification records, newest change first; *status* filters (id or label)."""
    try:
        wanted = records.vocab.resolve("verification_status", status) if status else None
    except Problem as exc:
        raise exc.as_error("status") from None
    out = []
    with records.engine.connect() as conn:
        rows = conn.execute(
            select(records_table.c.id, records_table.c.data, records_table.c.updated)
            .where(records_table.c.type == TYPE, records_table.c.deleted.is_(False))
            .order_by(records_table.c.updated.desc())
        ).all()
    for row in rows:
        data = json.loads(row.data)
        if wanted is None or data.get("status") == wanted:
            out.append({"id": row.id, "updated": row.updated.split("|")[0], **data})
    return out
