"""RFC 8785 (JCS) canonical JSON, fast.

The `rfc8785` package is the reference, but it is pure Python and was 40 % of the cost of
a ledger append. For the JSON Athar writes — no floats, and object keys within the Basic
Multilingual Plane — the standard library's C encoder with sorted keys and compact
separators produces exactly the JCS bytes: both escape only '"', '\\' and control
characters (as \\b \\f \\n \\r \\t or lowercase \\u00xx), write strings otherwise as UTF-8,
and write integers as plain decimals. Key order agrees because, within the BMP, UTF-16
code unit order (JCS) is code point order (Python). Anything else goes to `rfc8785`.
tests/test_canonical.py checks the equivalence on generated documents.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_MAX_SAFE_INT = 2**53 - 1
_encode = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
).encode


def _fast_path_ok(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str) or v is None or isinstance(v, bool):
            continue
        if isinstance(v, int):
            if not -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
                return False
        elif isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str) or not (k.isascii() or max(k, default="") <= "\uffff"):
                    return False
                stack.append(item)
        elif isinstance(v, list | tuple):
            stack.extend(v)
        else:
            return False  # floats and anything exotic: the reference implementation decides
    return True


def canonical_json(value: Any, *, known_simple: bool = False) -> bytes:
    """JCS bytes of *value*; *known_simple* skips the subset check for structures built
    here from ASCII strings and small integers only (such as a DSSE envelope)."""
    if known_simple or _fast_path_ok(value):
        return _encode(value).encode("utf-8")
    return bytes(rfc8785.dumps(value))
