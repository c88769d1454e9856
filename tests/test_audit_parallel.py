"""The audit splits large ledgers across worker processes; it must find exactly what the
single-process audit finds, clean or tampered."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from athar.crypto import aead
from athar.vault.audit import CHUNK_EVENTS, PARALLEL_FROM, audit
from athar.vault.ledger import event_ad
from athar.vault.vault import Vault


def _big_vault(vault: Vault, sample_files: Path) -> None:
    vault.add([sample_files])
    with vault.ledger.transaction() as tx:
        for i in range(PARALLEL_FROM + 300):
            tx.append("note.added", {"text": f"ملاحظة رقم {i}", "n": i})
    vault.add([sample_files / "sub"])  # nothing new, but a later batch


def test_parallel_audit_matches_serial_on_a_clean_ledger(vault: Vault, sample_files) -> None:
    _big_vault(vault, sample_files)
    parallel = audit(vault, workers=2)
    serial = audit(vault, workers=1)
    assert parallel.ok and serial.ok, parallel.problems
    assert parallel.to_json() == serial.to_json()
    assert parallel.events > PARALLEL_FROM and parallel.items == 4


def test_parallel_audit_names_tampering_in_any_chunk(vault: Vault, sample_files) -> None:
    _big_vault(vault, sample_files)
    conn = vault.ledger.conn
    victim = CHUNK_EVENTS + 17  # in the second chunk, checked by a worker process
    envelope = json.loads(vault.ledger.event_at(victim).entry)
    payload = base64.b64decode(envelope["payload"]).replace("ملاحظة".encode(), "تعديل".encode())
    envelope["payload"] = base64.b64encode(payload).decode()
    entry = json.dumps(envelope).encode()  # an insider's edit, without the device key
    resealed = aead.seal(vault.ledger._event_key, entry, event_ad(victim))
    conn.execute("UPDATE events SET sealed=? WHERE seq=?", (resealed, victim))
    conn.execute("DELETE FROM events WHERE seq=?", (2 * CHUNK_EVENTS + 5,))
    conn.commit()
    parallel = audit(vault, workers=2)
    serial = audit(vault, workers=1)
    assert parallel.to_json() == serial.to_json()
    found = {p.where for p in parallel.problems}
    assert f"event #{victim}" in found
    assert f"event #{2 * CHUNK_EVENTS + 5}" in found
    assert any("signature does not verify" in p.what for p in parallel.problems)
