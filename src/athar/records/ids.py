"""Record ids: a type prefix and 16 base32 characters (80 bits).

Random for records made by hand; derived from the source row's own id (or content) for
imports, so importing the same list again on any device yields the same ids and changes
nothing. Users may type any unique prefix of at least six characters.
"""

from __future__ import annotations

import hashlib
import os
import re

PREFIXES = {
    "incident": "inc",
    "person": "per",
    "source": "src",
    "testimony": "tes",
    "claim": "clm",
    "missing": "mis",
    "status": "sts",
    "verification": "ver",
}
TYPE_OF_PREFIX = {prefix: kind for kind, prefix in PREFIXES.items()}
_ID = re.compile(r"(inc|per|src|tes|clm|mis|sts|ver)-[a-z2-7]{16}")
_LENGTH = 16


_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower case
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # every 10-bit value as 2 characters


def _encode(raw: bytes) -> str:
    """Base32 of 10 bytes (16 characters, no padding), as base64.b32encode would give it,
    but without its pure-Python loop: ids are made by the hundred thousand on import."""
    n = int.from_bytes(raw[:10], "big")
    pairs = _PAIRS
    return "".join([pairs[(n >> shift) & 1023] for shift in range(70, -1, -10)])


def new_id(record_type: str) -> str:
    return f"{PREFIXES[record_type]}-{_encode(os.urandom(10))}"


def derived_id(record_type: str, key: str) -> str:
    """The same id for the same (type, key) on every device."""
    digest = hashlib.sha256(f"athar.record-id.v1\x00{record_type}\x00{key}".encode()).digest()
    return f"{PREFIXES[record_type]}-{_encode(digest[:10])}"


def is_record_id(text: str) -> bool:
    return _ID.fullmatch(text) is not None  # not match + $: that lets a final newline by


def type_of(record_id: str) -> str | None:
    return TYPE_OF_PREFIX.get(record_id.partition("-")[0])
