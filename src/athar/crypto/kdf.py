"""Passphrase stretching (Argon2id) and sub-key derivation (HKDF-SHA256)."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from athar.errors import InputError

# RFC 9106 §4, second recommended option: t=3, p=4, m=64 MiB. We never go below it.
MIN_TIME_COST = 3
MIN_MEMORY_KIB = 64 * 1024
DEFAULT_PARALLELISM = 4
SALT_BYTES = 16


@dataclass(frozen=True)
class Argon2Params:
    time_cost: int = MIN_TIME_COST
    memory_kib: int = MIN_MEMORY_KIB
    parallelism: int = DEFAULT_PARALLELISM
    salt: bytes = b""

    @classmethod
    def fresh(cls) -> Argon2Params:
        return cls(salt=os.urandom(SALT_BYTES))

    def to_json(self) -> dict[str, Any]:
        return {
            "alg": "argon2id",
            "v": 19,
            "t": self.time_cost,
            "m": self.memory_kib,
            "p": self.parallelism,
            "salt": self.salt.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Argon2Params:
        if data.get("alg") != "argon2id" or data.get("v") != 19:
            raise InputError("unsupported key derivation {alg}", alg=str(data.get("alg")))
        params = cls(int(data["t"]), int(data["m"]), int(data["p"]), bytes.fromhex(data["salt"]))
        # A tampered key file must not be able to weaken the derivation silently.
        if params.time_cost < MIN_TIME_COST or params.memory_kib < MIN_MEMORY_KIB:
            raise InputError("key file asks for Argon2id parameters weaker than RFC 9106 allows")
        if len(params.salt) < SALT_BYTES:
            raise InputError("key file has a salt shorter than 16 bytes")
        return params


def normalise_passphrase(passphrase: str) -> bytes:
    """NFC-normalise so the same Arabic passphrase typed on two keyboards derives one key."""
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def stretch(passphrase: str, params: Argon2Params) -> bytes:
    return hash_secret_raw(
        normalise_passphrase(passphrase),
        params.salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=32,
        type=Type.ID,
    )


def subkey(master: bytes, label: str, length: int = 32) -> bytes:
    """Derive an independent key for one purpose, so no key is ever used for two jobs."""
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=b"athar/v1/" + label.encode()
    ).derive(master)
