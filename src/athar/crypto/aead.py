"""Sealing small secrets and records with XChaCha20-Poly1305 (random 192-bit nonces).

A random nonce this long never repeats in practice, so one key can seal any number of
records; the associated data binds each sealed value to the place it belongs (a row
number, a blob name), so a value moved elsewhere no longer opens.
"""

from __future__ import annotations

import os

from nacl import bindings as sodium
from nacl.exceptions import CryptoError

from athar.errors import IntegrityError

KEY_BYTES: int = sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
NONCE_BYTES: int = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
OVERHEAD: int = NONCE_BYTES + sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES


def random_key() -> bytes:
    return os.urandom(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, ad: bytes = b"") -> bytes:
    """Return nonce ‖ ciphertext ‖ tag."""
    nonce = os.urandom(NONCE_BYTES)
    ct: bytes = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)
    return nonce + ct


def open_sealed(key: bytes, sealed: bytes, ad: bytes = b"", *, what: str = "record") -> bytes:
    """Open a sealed value or raise IntegrityError naming *what* failed."""
    if len(sealed) < OVERHEAD:
        raise IntegrityError("{what} is truncated", what=what)
    try:
        pt: bytes = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed[NONCE_BYTES:], ad, sealed[:NONCE_BYTES], key
        )
    except CryptoError:
        raise IntegrityError(
            "{what} failed authentication (altered, moved, or sealed by another key)", what=what
        ) from None
    return pt
