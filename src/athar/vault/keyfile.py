"""The vault's key file: the only place a passphrase meets the key material.

    {"format": "athar-vault-key/1", "kdf": {Argon2id parameters and salt},
     "master": hex(sealed master key), "identity": hex(sealed device identity + vault id)}

The master key is sealed under the Argon2id-stretched passphrase with the KDF parameters
as associated data (so they cannot be weakened without breaking the seal). Everything else
in the vault is sealed under keys derived from the master key, so destroying this one
small file destroys access to everything: that is what `athar wipe` does.

Nothing in this file names the device or its public key: a seized disk must not link
its owner to evidence published with that key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from athar.crypto import aead
from athar.crypto.identity import DeviceIdentity
from athar.crypto.kdf import Argon2Params, stretch, subkey
from athar.errors import AtharError, IntegrityError, VaultLocked, WrongPassphrase
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


def unlock(path: Path, passphrase: str) -> UnlockedKeys:
    try:
        document = json.loads(path.read_bytes())
        if document.get("format") != FORMAT:
            raise ValueError
        params = Argon2Params.from_json(document["kdf"])
        sealed_master = bytes.fromhex(document["master"])
        sealed_identity = bytes.fromhex(document["identity"])
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
    kek = stretch(passphrase, params)
    try:
        master = aead.open_sealed(
            kek, sealed_master, _master_ad(params), what="key file", cache=False
        )
    except IntegrityError:
        raise WrongPassphrase("wrong passphrase (nothing was changed)") from None
    blob = aead.open_sealed(
        subkey(master, "identity"), sealed_identity, b"identity", what="identity"
    )
    return UnlockedKeys(master, DeviceIdentity.from_bytes(blob[:64]), blob[64:])


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
