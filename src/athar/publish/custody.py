"""`publish custody`: a chain-of-custody report for courts and investigators, as a PDF.

The report states the item's hashes, what the file says about its capture, every signed
event that touched it (who, when), the Merkle inclusion proof and the checkpoint it leads
to, and the verification decision if there is one. The proof and checkpoint are also
attached to the PDF as JSON files (PDF embedded files), so an investigator holding only
the PDF and the original can run `athar check-proof` without the vault or its passphrase.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from athar.crypto.identity import fingerprint
from athar.errors import InputError
from athar.publish.copy import PUBLISH_COPY
from athar.publish.render import render_pdf
from athar.records.service import Records
from athar.records.store import records as records_table
from athar.vault.events import unwrap
from athar.vault.items import ITEM_ADDED, ITEM_SHREDDED, Item
from athar.vault.vault import Vault

PROOF_NAME = "proof.json"
CHECKPOINT_NAME = "checkpoint.json"
CAPTURE_KEYS = ("taken", "camera", "software", "gps", "duration", "size", "format")


@dataclass
class CustodyEvent:
    seq: int
    kind: str
    time: str
    signer: str
    detail: str
    event_id: str


def custody_events(vault: Vault, item: Item) -> list[CustodyEvent]:
    """Every ledger event that names the item, in ledger order."""
    out = []
    for seq, outer in enumerate(vault.events()):
        signed = unwrap(outer)  # events that arrived in bundles, as their origin signed them
        ev, body = signed.event, signed.event.body
        detail = ""
        if ev.kind == ITEM_ADDED and signed.id == item.id:
            detail = f"added: {body.get('name')} ({body.get('size')} bytes)"
        elif ev.kind == ITEM_SHREDDED and body.get("item") == item.id:
            detail = f"destroyed: {body.get('reason')}"
        elif ev.kind == PUBLISH_COPY and body.get("original") == item.id:
            faces = body.get("faces", {})
            detail = (
                f"public copy {body.get('sha256')}: metadata removed, "
                f"{faces.get('hidden', 0)} face(s) and {len(body.get('regions', []))} "
                "region(s) hidden"
            )
        elif body.get("dst") == item.id or body.get("fields", {}).get("item") == item.id:
            what = body.get("rel") or body.get("type") or ""
            detail = f"{ev.kind} {body.get('src') or body.get('id') or ''} {what}".strip()
        else:
            continue
        out.append(CustodyEvent(seq, ev.kind, ev.time, fingerprint(ev.device), detail, signed.id))
    return out


def capture_metadata(data: bytes) -> dict[str, Any]:
    """What the file says about its capture, through the verification metadata reader
    when it is installed; nothing otherwise (the report says so)."""
    try:
        from athar.verify.metadata import extract
    except ImportError:  # pragma: no cover - verify is part of the same distribution
        return {}
    meta = extract(data)
    return {k: v for k, v in meta.summary.items() if v not in (None, "", [], {})}


def verification(records: Records, item: Item) -> dict[str, Any] | None:
    query = select(records_table.c.id, records_table.c.data).where(
        records_table.c.type == "verification", records_table.c.deleted.is_(False)
    )
    with records.engine.connect() as conn:
        for row in conn.execute(query):
            data = json.loads(row.data)
            if data.get("item") == item.id:
                return {"id": row.id, **data}
    return None


def build(vault: Vault, records: Records | None, item_id: str) -> dict[str, Any]:
    item = vault.item(item_id)
    if item.shredded:
        raise InputError("item {id} was destroyed (crypto-shredded)", id=item.short_id)
    data = b"".join(vault.read(item))  # also re-checks the recorded SHA-256
    checkpoint = vault.checkpoint()
    proof = vault.prove(item, checkpoint)
    return {
        "item": item.to_json(),
        "capture": capture_metadata(data),
        "events": [e.__dict__ for e in custody_events(vault, item)],
        "proof": proof,
        "checkpoint": checkpoint.to_json(),
        "verification": verification(records, item) if records is not None else None,
        "made": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": vault.device_fingerprint,
        "proof_name": PROOF_NAME,
        "checkpoint_name": CHECKPOINT_NAME,
    }


def write_report(vault: Vault, records: Records | None, item_id: str, out: Path) -> dict[str, Any]:
    if out.suffix.lower() != ".pdf":
        raise InputError("the custody report is a PDF: give --out a name ending in .pdf")
    if out.exists():
        raise InputError("{path} already exists; choose another name", path=str(out))
    if not out.parent.is_dir():
        raise InputError("cannot write {path}: folder does not exist", path=str(out))
    report = build(vault, records, item_id)
    attachments = {
        PROOF_NAME: json.dumps(report["proof"], indent=2, ensure_ascii=False),
        CHECKPOINT_NAME: json.dumps(report["checkpoint"], indent=2, ensure_ascii=False),
    }
    render_pdf("custody.html", report, out, attachments)
    return report
