"""Rotating a device's keys: a new signing and encryption identity for the same device.

A key that may have been copied (a laptop out of sight at a checkpoint, a repair shop, a
colleague who left) is retired without retiring the device or its evidence:

    device.rotated                {old, new, new_encryption_key, after_dseq, new_signature}
        signed by the OLD key as its event number after_dseq, its last valid one;
        new_signature is the NEW key's signature over the same statement, so nobody can
        rotate "to" a key they do not hold (e.g. claim an admin's key as their own).
    device.rotation-acknowledged  {old, rotation}
        the NEW key's first event, in the same ledger transaction; its presence in the
        ledger head is how a reopened vault knows that an interrupted rotation committed.

Everything the old key signed up to after_dseq stays valid (verify, proofs, custody);
what it signs later is refused (athar.sync.membership, athar.vault.audit). Whether a
rotation is honoured by other vaults is decided there: a rotation by a key that an admin
revoked before after_dseq is void, so a thief holding only a revoked key cannot rotate.
"""

from __future__ import annotations

import binascii
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from athar.crypto.identity import DeviceIdentity, b64, unb64, verify_signature
from athar.errors import AtharError
from athar.vault import duress, keyfile
from athar.vault.canonical import canonical_json
from athar.vault.keyfile import UnlockedKeys
from athar.vault.vault import KEY_FILE, Vault

ROTATED = "device.rotated"
ACKNOWLEDGED = "device.rotation-acknowledged"
STATEMENT_TYPE = "athar.device-rotation/1"


@dataclass(frozen=True)
class Link:
    """One honoured rotation: *old* signed nothing valid after *after*; *new* is the
    same device from then on."""

    old: bytes
    new: bytes
    encryption_key: bytes
    after: int


def statement(old: bytes, new: bytes, encryption_key: bytes, after: int) -> bytes:
    return canonical_json(
        {
            "type": STATEMENT_TYPE,
            "old": b64(old),
            "new": b64(new),
            "new_encryption_key": b64(encryption_key),
            "after_dseq": after,
        }
    )


def body_for(old: DeviceIdentity, new: DeviceIdentity, after: int) -> dict[str, Any]:
    signed = statement(old.public_key, new.public_key, new.encryption_public_key, after)
    return {
        "old": b64(old.public_key),
        "new": b64(new.public_key),
        "new_encryption_key": b64(new.encryption_public_key),
        "after_dseq": after,
        "new_signature": b64(new.sign(signed)),
    }


def parse(signer: bytes, dseq: int, body: dict[str, Any]) -> Link | None:
    """The rotation a device.rotated event states, if it is well formed and both keys
    signed it (the event's own signature, by *signer*, is checked by whoever read it)."""
    try:
        old, new = unb64(str(body["old"])), unb64(str(body["new"]))
        enc, sig = unb64(str(body["new_encryption_key"])), unb64(str(body["new_signature"]))
        after = body["after_dseq"]
    except (KeyError, ValueError, TypeError, binascii.Error):
        return None
    if not isinstance(after, int) or isinstance(after, bool):
        return None
    if old != signer or after != dseq or new == old or len(new) != 32 or len(enc) != 32:
        return None
    if not verify_signature(new, statement(old, new, enc, after), sig):
        return None
    return Link(old, new, enc, after)


def resolve(links: Iterable[Link]) -> tuple[dict[bytes, Link], set[bytes]]:
    """One rotation per old key, whatever order they arrived in: the earliest (lowest
    after_dseq) wins. Two different rotations at the same point are a fork (someone else
    holds the old key): the old key is retired there and neither new key is honoured
    (*forked*); an admin must enrol the genuine new key by hand."""
    best: dict[bytes, Link] = {}
    forked: set[bytes] = set()
    for link in links:
        current = best.get(link.old)
        if current is None or link.after < current.after:
            best[link.old] = link
            forked.discard(link.old)
        elif link.after == current.after and link.new != current.new:
            forked.add(link.old)
    return best, forked


def predecessors(best: dict[bytes, Link], forked: set[bytes]) -> dict[bytes, Link]:
    """new key -> the rotation that made it; a key claimed as new by two old keys is
    nobody's successor (ambiguous, and order-independent that way)."""
    by_new: dict[bytes, list[Link]] = {}
    for old, link in best.items():
        if old not in forked:
            by_new.setdefault(link.new, []).append(link)
    return {new: found[0] for new, found in by_new.items() if len(found) == 1}


def lineage(current: bytes, preds: dict[bytes, Link]) -> dict[bytes, Link]:
    """The former keys of the device whose key is now *current*, each with the rotation
    that retired it."""
    out: dict[bytes, Link] = {}
    key = current
    while key in preds:
        link = preds[key]
        if link.old in out or link.old == current:
            break  # a cycle cannot be made honestly; stop rather than loop
        out[link.old] = link
        key = link.old
    return out


def own_former_keys(
    current: bytes, rotations: Iterable[tuple[bytes, int, dict[str, Any]]]
) -> dict[bytes, Link]:
    """This vault's former device keys from its own device.rotated events."""
    parsed = [parse(signer, dseq, body) for signer, dseq, body in rotations]
    best, forked = resolve(link for link in parsed if link is not None)
    return lineage(current, predecessors(best, forked))


def rotate(vault: Vault) -> Link:
    """Give this vault's device a new identity; the old key signs its retirement.

    Order of writes, each atomic: the new identity is sealed into the key file beside
    the old one (pending); the ledger commits the rotation (old key) and its
    acknowledgement and checkpoint (new key); the key file keeps only the new identity.
    A crash between two steps is settled when the vault next opens (Vault.open)."""
    path = vault.root / KEY_FILE
    old_keys = vault.keys
    new = DeviceIdentity.generate()
    new_keys = UnlockedKeys(old_keys.master, new, old_keys.vault_id)
    old_b64 = b64(old_keys.identity.public_key)
    with duress._locked(vault.root):  # no unlock may write the key file meanwhile
        keyfile.stage_identity(path, old_keys, new)
        try:
            with vault.ledger.transaction() as tx:
                last = tx.head.devices.get(old_b64)
                after = last[0] + 1 if last else 0
                rotated = tx.append(ROTATED, body_for(old_keys.identity, new, after))
                tx.retire(old_keys.identity.public_key)  # other open processes stop signing
                vault.ledger.keys = new_keys  # from here on the ledger signs with the new key
                tx.append(ACKNOWLEDGED, {"old": old_b64, "rotation": rotated.id})
        except BaseException:
            vault.ledger.keys = old_keys
            with contextlib.suppress(AtharError, OSError):
                keyfile.drop_pending(path)
            raise
        keyfile.commit_identity(path, new_keys)
    vault.keys = new_keys
    return Link(old_keys.identity.public_key, new.public_key, new.encryption_public_key, after)
