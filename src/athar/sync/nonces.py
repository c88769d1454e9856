"""The nonces of accepted sync requests, kept across restarts of the server.

A signed request stays acceptable for a few minutes (``server.MAX_AGE``). A server that
forgot which nonces it had accepted — a restart, a power cut — would accept a captured
request a second time within that window: a pushed chunk written again, a mailbox entry
deleted again. So each accepted nonce is written to disk before the request is answered,
and a nonce is refused while it is younger than the window, whichever process saw it.

The book is one small file in the vault folder, replaced whole at each write (atomic,
fsynced) and sealed (ChaCha20-Poly1305 under the "sync/nonces" sub-key): on disk it says
nothing, not even how many requests were made. Inside, a nonce is a keyed hash of the
device key and the nonce, so even the opened book does not name devices. Nonces older
than the window are dropped at every write, so the book holds only a few minutes of
requests. A book that does not open (tampered, or from another vault) stops the server's
sync with an integrity error rather than silently forgetting what it accepted.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path

from athar.crypto import aead
from athar.vault.fsutil import atomic_write

FILE = "sync-nonces"
_AD = b"athar.sync.nonces/1"


class NonceBook:
    """Not thread-safe: the server calls it under its own lock."""

    def __init__(self, folder: Path, seal_key: bytes, tag_key: bytes) -> None:
        self.path = folder / FILE
        self._seal_key = seal_key
        self._tag_key = tag_key
        self._seen: dict[str, float] = {}
        if self.path.exists():
            plain = aead.open_sealed(
                seal_key, self.path.read_bytes(), _AD, what="the sync server's nonce book"
            )
            self._seen = {str(k): float(v) for k, v in json.loads(plain).items()}

    def accept(self, device: bytes, nonce: str, created: float, forget_before: float) -> bool:
        """Record *nonce* of *device*; False if it was accepted before (a replay).

        Nonces created before *forget_before* are dropped: requests that old are refused
        for their age anyway."""
        tag = hmac.digest(self._tag_key, device + b"\n" + nonce.encode(), "sha256")[:16].hex()
        if tag in self._seen:
            return False
        kept = {k: t for k, t in self._seen.items() if t >= forget_before}
        kept[tag] = created
        sealed = aead.seal(self._seal_key, json.dumps(kept).encode(), _AD)
        atomic_write(self.path, sealed)  # before the request is answered
        self._seen = kept
        return True
