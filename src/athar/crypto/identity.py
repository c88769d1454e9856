"""A device's identity: an Ed25519 key that signs, an X25519 key others encrypt to."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cached_property, lru_cache

from nacl.exceptions import BadSignatureError
from nacl.public import PrivateKey
from nacl.signing import SigningKey, VerifyKey

SIGNATURE_BYTES = 64


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@lru_cache(maxsize=256)
def fingerprint(public_key: bytes) -> str:
    """A short, human-comparable name for a public key (read aloud over a phone)."""
    digest = hashlib.sha256(b"athar-device-fingerprint\n" + public_key).hexdigest()[:20]
    return "-".join(digest[i : i + 4] for i in range(0, 20, 4))


@dataclass(frozen=True)
class DeviceIdentity:
    signing_seed: bytes
    encryption_secret: bytes

    @classmethod
    def generate(cls) -> DeviceIdentity:
        return cls(bytes(SigningKey.generate()), bytes(PrivateKey.generate()))

    # Deriving the Ed25519 key pair from the seed costs as much as a signature; derive once.
    @cached_property
    def _signing_key(self) -> SigningKey:
        return SigningKey(self.signing_seed)

    @cached_property
    def public_key(self) -> bytes:
        return bytes(self._signing_key.verify_key)

    @cached_property
    def encryption_public_key(self) -> bytes:
        return bytes(PrivateKey(self.encryption_secret).public_key)

    def sign(self, message: bytes) -> bytes:
        return self._signing_key.sign(message).signature

    def to_bytes(self) -> bytes:
        return self.signing_seed + self.encryption_secret

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceIdentity:
        if len(data) != 64:
            raise ValueError("device identity must be 64 bytes")
        return cls(data[:32], data[32:])


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != 32 or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, ValueError):
        return False
    return True
