"""The vault's key file: the only place a passphrase meets the key material.

    {"format": "athar-vault-key/1", "kdf": {Argon2id parameters and salt},
     "master": hex(sealed master key), "identity": hex(sealed device identity + vault id)}

The master key is sealed under the Argon2id-stretched passphrase with the KDF parameters
as associated data (so they cannot be weakened without breaking the seal). Everything else
in the vault is sealed under keys derived from the master key, so destroying this one
small file destroys access to everything: that is what `athar wipe` does.

Optional fields (issue 10): "recovery", the master key sealed a second time under a key
that exists only as paper shares (athar.vault.recovery), "guard", the clear-text
auto-wipe counter (athar.vault.duress), and "pending", the next device identity while a
key rotation is under way (athar.vault.rotation; settled when the vault next opens).
Every rewrite goes through save(), which also overwrites the old file's blocks;
scrubbed() is what a duress unlock leaves behind.

Nothing in this file names the device or its public key: a seized disk must not link
its owner to evidence published with that key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from athar.crypto import aead
from athar.crypto.identity import DeviceIdentity
from athar.crypto.kdf import Argon2Params, stretch, subkey
from athar.errors import AtharError, InputError, IntegrityError, VaultLocked, WrongPassphrase
from athar.vault.fsutil import atomic_write

FORMAT = "athar-vault-key/1"
VAULT_ID_BYTES = 16


@dataclass(frozen=True)
class UnlockedKeys:
    master: bytes
    identity: DeviceIdentity
    vault_id: bytes

    def subkey(self, label: str) -> bytes:
        return subkey(self.master, label)


def _master_ad(params: Argon2Params) -> bytes:
    return b"athar-vault-key/1 master\n" + json.dumps(params.to_json(), sort_keys=True).encode()


def create(path: Path, passphrase: str, params: Argon2Params | None = None) -> UnlockedKeys:
    params = params or Argon2Params.fresh()
    master = aead.random_key()
    keys = UnlockedKeys(master, DeviceIdentity.generate(), os.urandom(VAULT_ID_BYTES))
    kek = stretch(passphrase, params)
    document = {
        "format": FORMAT,
        "kdf": params.to_json(),
        "master": aead.seal(kek, master, _master_ad(params), cache=False).hex(),
        "identity": aead.seal(
            keys.subkey("identity"), keys.identity.to_bytes() + keys.vault_id, b"identity"
        ).hex(),
    }
    atomic_write(path, json.dumps(document, indent=1).encode())
    return keys


def load(path: Path) -> dict[str, Any]:
    """Read and shape-check the key file (no passphrase needed, nothing opened)."""
    try:
        document = json.loads(path.read_bytes())
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError
        Argon2Params.from_json(document["kdf"])
        bytes.fromhex(document["master"])
        bytes.fromhex(document["identity"])
    except FileNotFoundError:
        raise VaultLocked(
            "the vault's key file is missing: the vault was wiped or is incomplete"
        ) from None
    except AtharError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError):
        raise VaultLocked(
            "the vault's key file is unreadable: the vault was wiped or damaged"
        ) from None
    return document


def passphrase_key(document: dict[str, Any], passphrase: str) -> bytes:
    """The Argon2id step: the only slow part of unlocking, run once per key file."""
    return stretch(passphrase, Argon2Params.from_json(document["kdf"]))


def open_master(document: dict[str, Any], kek: bytes) -> bytes | None:
    """The master key if *kek* opens the passphrase slot, else None."""
    params = Argon2Params.from_json(document["kdf"])
    try:
        return aead.open_sealed(
            kek, bytes.fromhex(document["master"]), _master_ad(params), what="key file", cache=False
        )
    except IntegrityError:
        return None


def keys_from_master(document: dict[str, Any], master: bytes) -> UnlockedKeys:
    blob = aead.open_sealed(
        subkey(master, "identity"),
        bytes.fromhex(document["identity"]),
        b"identity",
        what="identity",
    )
    return UnlockedKeys(master, DeviceIdentity.from_bytes(blob[:64]), blob[64:])


def _seal_identity(keys: UnlockedKeys, identity: DeviceIdentity, ad: bytes) -> str:
    return aead.seal(keys.subkey("identity"), identity.to_bytes() + keys.vault_id, ad).hex()


PENDING = "pending"
_PENDING_AD = b"identity pending"


def stage_identity(path: Path, keys: UnlockedKeys, new: DeviceIdentity) -> None:
    """Keep *new* beside the current identity before the ledger records the rotation, so
    that a crash between the two writes loses no key: see settle_identity()."""
    document = load(path)
    document[PENDING] = _seal_identity(keys, new, _PENDING_AD)
    save(path, document)


def pending_identity(document: dict[str, Any], master: bytes) -> DeviceIdentity | None:
    sealed = document.get(PENDING)
    if not isinstance(sealed, str):
        return None
    try:
        blob = aead.open_sealed(
            subkey(master, "identity"), bytes.fromhex(sealed), _PENDING_AD, what="identity"
        )
    except (IntegrityError, ValueError):
        return None  # a damaged pending slot: the rotation never happened
    return DeviceIdentity.from_bytes(blob[:64])


def commit_identity(path: Path, keys: UnlockedKeys) -> None:
    """Make *keys*' identity the device's own and forget the pending slot (one rewrite,
    which also overwrites the blocks of the file that held the old identity)."""
    document = load(path)
    document["identity"] = _seal_identity(keys, keys.identity, b"identity")
    document.pop(PENDING, None)
    save(path, document)


def drop_pending(path: Path) -> None:
    document = load(path)
    if document.pop(PENDING, None) is not None:
        save(path, document)


def unlock(path: Path, passphrase: str) -> UnlockedKeys:
    document = load(path)
    master = open_master(document, passphrase_key(document, passphrase))
    if master is None:
        raise WrongPassphrase("wrong passphrase (nothing was changed)")
    return keys_from_master(document, master)


def rewrap(path: Path, keys: UnlockedKeys, passphrase: str) -> None:
    """Seal the master key under a new passphrase; every other slot is kept as it is."""
    if not passphrase:
        raise InputError("the passphrase must not be empty")
    document = load(path)
    params = Argon2Params.fresh()
    document["kdf"] = params.to_json()
    document["master"] = aead.seal(
        stretch(passphrase, params), keys.master, _master_ad(params), cache=False
    ).hex()
    if isinstance(document.get("guard"), dict):
        document["guard"]["failed"] = 0
    save(path, document)


# Fields that are not sealed key material: everything else is scrubbed by scrub().
CLEAR_FIELDS = frozenset({"format", "kdf", "guard"})


def _randomised(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return os.urandom(len(bytes.fromhex(value))).hex()
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _randomised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_randomised(v) for v in value]
    return value


def scrubbed(document: dict[str, Any]) -> dict[str, Any]:
    """The same document with every sealed value replaced by random bytes of its length:
    it looks like a key file whose passphrase is unknown, and opens with nothing."""
    return {k: (v if k in CLEAR_FIELDS else _randomised(v)) for k, v in document.items()}


def save(path: Path, document: dict[str, Any]) -> None:
    """Replace the key file whole (a crash leaves the old one or the new one), then
    overwrite the old file's blocks with random bytes: a rename alone would leave the old
    sealed keys readable in freed blocks, where a forensic examiner could carve them."""
    try:
        old = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        old = None
    try:
        atomic_write(path, json.dumps(document, indent=1).encode())
        if old is not None:
            size = os.fstat(old).st_size
            os.pwrite(old, os.urandom(max(size, 4096)), 0)
            os.fsync(old)
    finally:
        if old is not None:
            os.close(old)


def destroy(path: Path) -> None:
    """Overwrite the key file with random bytes, flush, and delete it.

    On flash storage the old blocks may survive overwriting (wear levelling); what makes
    the wipe effective is that the master key existed only here and in memory.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    with open(path, "r+b", buffering=0) as fh:
        fh.write(os.urandom(max(size, 4096)))
        os.fsync(fh.fileno())
    path.unlink()
