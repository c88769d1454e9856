"""Stable pseudonyms for protected people and sources.

A pseudonym is a keyed hash (HMAC-SHA256) of the record id under a sub-key of the
vault's master key: the same person gets the same pseudonym in every report, site and
export made from that vault, so readers can follow one witness across documents, while
no one without the vault can tell who it is or even test a guess (the key is secret,
and the record id is random).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from athar.publish.labels import label

SUBKEY = "publish/pseudonyms"
CODE_LETTERS = 6  # base32: 30 bits; collisions among a few thousand people are unlikely


class Pseudonyms:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("pseudonym key too short")
        self._key = key

    def code(self, record_id: str) -> str:
        digest = hmac.new(self._key, record_id.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode()[:CODE_LETTERS]

    def name(self, record_id: str, record_type: str, lang: str) -> str:
        """A readable pseudonym such as "Source K7QM2A" / "مصدر K7QM2A"."""
        kind = "source" if record_type == "source" else "person"
        return label(f"pseudonym.{kind}", lang, code=self.code(record_id))

    def token(self, record_id: str, length: int = 16) -> str:
        """An opaque name for files derived from a record or item (lower-case, url-safe)."""
        digest = hmac.new(self._key, b"file\n" + record_id.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode()[:length].lower()
