"""What a vault remembers about exchanges, sealed in its ledger database.

Three tables beside the ledger's own, written in the same transaction as the events an
import appends (so an import lands whole or not at all):

    sync_mirror(origin, idx, sealed)  each origin vault's ledger leaf hashes, in its order:
                                      lets the origin's checkpoints be checked and receipts
                                      be proved. origin = keyed hash of the origin's name.
    sync_held(tag)                    keyed hash of every foreign event id held here, so an
                                      event arriving twice (by two routes) is kept once.
    sync_state(k, v)                  sealed JSON: foreign devices' chain heads, receipts
                                      acknowledged by recipients.

Nothing here is readable without the vault key: leaves and state are sealed
(ChaCha20-Poly1305 under the "sync/state" sub-key, bound to their row), names are
HMACs under "sync/names".
"""

from __future__ import annotations

import hmac
import json
import struct
from typing import Any

from athar.crypto import aead
from athar.vault.ledger import Ledger

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sync_mirror (origin BLOB NOT NULL, idx INTEGER NOT NULL, "
    "sealed BLOB NOT NULL, PRIMARY KEY (origin, idx))",
    "CREATE TABLE IF NOT EXISTS sync_held (tag BLOB PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS sync_state (k TEXT PRIMARY KEY, v BLOB NOT NULL)",
)
_IDX = struct.Struct(">Q")


class SyncState:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.conn = ledger.conn
        self._seal_key = ledger.keys.subkey("sync/state")
        self._name_key = ledger.keys.subkey("sync/names")
        if not self.conn.in_transaction:
            for statement in SCHEMA:
                self.conn.execute(statement)

    def origin_tag(self, origin: str) -> bytes:
        return hmac.digest(self._name_key, origin.encode(), "sha256")[:16]

    # -- mirrors of other vaults' ledgers ------------------------------------------
    def mirror(self, origin: str) -> list[bytes]:
        tag = self.origin_tag(origin)
        rows = self.conn.execute(
            "SELECT idx, sealed FROM sync_mirror WHERE origin=? ORDER BY idx", (tag,)
        )
        out = []
        for idx, sealed in rows:
            ad = b"mirror\n" + tag + _IDX.pack(idx)
            out.append(aead.open_sealed(self._seal_key, sealed, ad, what="sync mirror"))
        return out

    def extend_mirror(self, origin: str, start: int, leaves: list[bytes]) -> None:
        tag = self.origin_tag(origin)
        rows = []
        for offset, leaf in enumerate(leaves):
            idx = start + offset
            ad = b"mirror\n" + tag + _IDX.pack(idx)
            rows.append((tag, idx, aead.seal(self._seal_key, leaf, ad)))
        self.conn.executemany(
            "INSERT INTO sync_mirror (origin, idx, sealed) VALUES (?, ?, ?)", rows
        )

    # -- foreign events held -------------------------------------------------------
    def holds(self, leaf: bytes) -> bool:
        tag = self.ledger.tag(leaf)
        if self.conn.execute("SELECT 1 FROM sync_held WHERE tag=?", (tag,)).fetchone():
            return True
        return self.conn.execute("SELECT 1 FROM events WHERE tag=?", (tag,)).fetchone() is not None

    def mark_held(self, leaves: list[bytes]) -> None:
        self.conn.executemany(
            "INSERT INTO sync_held (tag) VALUES (?)", [(self.ledger.tag(x),) for x in leaves]
        )

    # -- small sealed documents ----------------------------------------------------
    def get(self, key: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT v FROM sync_state WHERE k=?", (key,)).fetchone()
        if row is None:
            return {}
        plain = aead.open_sealed(self._seal_key, row[0], b"state\n" + key.encode(), what=key)
        doc: dict[str, Any] = json.loads(plain)
        return doc

    def put(self, key: str, doc: dict[str, Any]) -> None:
        sealed = aead.seal(self._seal_key, json.dumps(doc).encode(), b"state\n" + key.encode())
        self.conn.execute("INSERT OR REPLACE INTO sync_state (k, v) VALUES (?, ?)", (key, sealed))
