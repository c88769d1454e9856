"""Unlocking under coercion: a duress passphrase and an optional auto-wipe.

A vault with a decoy holds a second, complete, ordinary vault in its folder `spare/`,
sealed under the duress passphrase. Unlocking then always runs Argon2id for the vault's
key file and then for the decoy's, and tries both seals, whichever passphrase was given,
so the two outcomes cost the same work in the same order. If the duress passphrase
opened the decoy, every sealed value in the real key file (passphrase slot, identity,
recovery slot) is replaced by random bytes of the same length, and the decoy is what the
caller gets: its items, its records, its ledger. The real evidence is then ciphertext
that no passphrase and no share opens, so no later pressure can bring it back.

Auto-wipe counts an unlock as failed *before* trying it (a process killed mid-attempt
still counts) and forgives on success; after N failures in a row it scrubs the key file
the same way. The counter is in the clear in the key file (it must be written without
the key), so it only stops guessing through Athar: a copy of the key file can be attacked
offline at Argon2id speed. docs/threat-model.md says what each leaves behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from athar.errors import AtharError, InputError, VaultLocked, WrongPassphrase
from athar.vault import keyfile
from athar.vault.keyfile import UnlockedKeys

KEY_FILE = "key"
DECOY_DIR = "spare"
GUARD = "guard"
MAX_LIMIT = 1000


def decoy_root(root: Path) -> Path:
    return root / DECOY_DIR


def has_decoy(root: Path) -> bool:
    return (decoy_root(root) / KEY_FILE).exists()


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One key-file update at a time: a concurrent unlock must not write back key material
    that a duress unlock has just scrubbed."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _limit(document: dict[str, Any]) -> tuple[int, int]:
    guard = document.get(GUARD)
    if not isinstance(guard, dict):
        return 0, 0
    try:
        return max(0, int(guard.get("limit", 0))), max(0, int(guard.get("failed", 0)))
    except (TypeError, ValueError):
        raise VaultLocked(
            "the vault's key file is unreadable: the vault was wiped or damaged"
        ) from None


def _load_spare(path: Path) -> dict[str, Any] | None:
    """The decoy's key file; a damaged one must not lock the owner out of the real vault."""
    try:
        return keyfile.load(path) if path.exists() else None
    except AtharError:
        return None


def unlock(root: Path, passphrase: str) -> tuple[Path, UnlockedKeys]:
    """Open *root* with *passphrase*: (root, keys) for the real vault, (decoy root, decoy
    keys) for the duress passphrase — after the real key material is destroyed."""
    key_path = root / KEY_FILE
    spare_path = decoy_root(root) / KEY_FILE
    document = keyfile.load(key_path)
    limit, _ = _limit(document)
    if limit == 0 and not spare_path.exists():
        return root, keyfile.unlock(key_path, passphrase)  # the plain path: one Argon2id
    with _locked(root):
        document = keyfile.load(key_path)
        limit, failed = _limit(document)
        if limit:
            document[GUARD] = {"limit": limit, "failed": failed + 1}
            keyfile.save(key_path, document)
        spare = _load_spare(spare_path)
        # Both stretches and both seal checks run whatever the passphrase: equal work.
        kek = keyfile.passphrase_key(document, passphrase)
        spare_kek = keyfile.passphrase_key(spare, passphrase) if spare is not None else b""
        master = keyfile.open_master(document, kek)
        spare_master = keyfile.open_master(spare, spare_kek) if spare is not None else None
        if master is not None:
            opened = root, keyfile.keys_from_master(document, master)
        elif spare is not None and spare_master is not None:
            opened = decoy_root(root), keyfile.keys_from_master(spare, spare_master)
            document = keyfile.scrubbed(document)
        else:
            if limit and failed + 1 >= limit:
                keyfile.save(key_path, keyfile.scrubbed(document))
            raise WrongPassphrase("wrong passphrase (nothing was changed)")
        if limit:
            document[GUARD] = {"limit": limit, "failed": 0}
        keyfile.save(key_path, document)  # the same write on both paths
        return opened


def check_distinct(root: Path, duress_passphrase: str) -> None:
    """Refuse a duress passphrase that opens the real vault (it would destroy nothing)."""
    if not duress_passphrase:
        raise InputError("the passphrase must not be empty")
    try:
        keyfile.unlock(root / KEY_FILE, duress_passphrase)
    except WrongPassphrase:
        return
    raise InputError("the duress passphrase must differ from the vault's passphrase")


def set_autowipe(root: Path, limit: int) -> None:
    """Scrub the key file after *limit* failed unlocks in a row (0 turns it off)."""
    if not 0 <= limit <= MAX_LIMIT or limit in (1, 2):
        raise InputError(
            "auto-wipe needs at least 3 failed unlocks (or 0 to turn it off), at most {max}",
            max=MAX_LIMIT,
        )
    key_path = root / KEY_FILE
    with _locked(root):
        document = keyfile.load(key_path)
        if limit:
            document[GUARD] = {"limit": limit, "failed": 0}
        else:
            document.pop(GUARD, None)
        keyfile.save(key_path, document)


def autowipe_limit(root: Path) -> int:
    return _limit(keyfile.load(root / KEY_FILE))[0]
