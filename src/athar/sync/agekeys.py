"""A device's age identity is its vault X25519 key, written in age's bech32 form.

The vault identity already holds an X25519 key pair "others encrypt to"; age's X25519
recipients are exactly such keys. So a bundle addressed to a device opens with that
device's vault, or (if everything else is lost) with the standard `age` tool and the
identity `athar bundle age-identity` prints. No second secret to back up or lose.
"""

from __future__ import annotations

import bech32
from pyrage import x25519

from athar.errors import InputError

_SECRET_HRP = "age-secret-key-"  # noqa: S105 - the bech32 prefix, not a secret
_PUBLIC_HRP = "age"


def _encode(hrp: str, data: bytes) -> str:
    words = bech32.convertbits(list(data), 8, 5)
    assert words is not None
    return bech32.bech32_encode(hrp, words)


def recipient_string(encryption_public_key: bytes) -> str:
    return _encode(_PUBLIC_HRP, encryption_public_key)


def identity_string(encryption_secret: bytes) -> str:
    return _encode(_SECRET_HRP, encryption_secret).upper()


def identity(encryption_secret: bytes) -> x25519.Identity:
    return x25519.Identity.from_str(identity_string(encryption_secret))


def parse_recipient(text: str) -> x25519.Recipient:
    try:
        return x25519.Recipient.from_str(text.strip())
    except Exception:  # pyrage raises its own RecipientError (a ValueError subclass or not)
        raise InputError("{key} is not an age recipient (age1…)", key=text) from None


def recipient_key(text: str) -> bytes:
    """The 32 raw bytes of an age1… recipient."""
    hrp, words = bech32.bech32_decode(text.strip().lower())
    data = bech32.convertbits(words, 5, 8, False) if words is not None else None
    if hrp != _PUBLIC_HRP or data is None or len(data) != 32:
        raise InputError("{key} is not an age recipient (age1…)", key=text)
    return bytes(data)
