"""Receipts: the receiver's signed word of what it holds of a sender's ledger.

A receipt is a C2SP signed note (the same format as Athar checkpoints) made by the
receiving device over the sender's tree size and Merkle root *as the receiver holds it*,
with an extension line naming the sender, followed by the receiver's verifier key::

    athar.receipt/<receiver vault id>
    <size>
    <base64 root of the sender's first <size> events, as held by the receiver>
    of athar.vault/<sender vault id>
    time <RFC 3339>

    — athar.receipt/<receiver vault id> <base64(key id ‖ signature)>
    athar.receipt/<receiver vault id>+<key id>+<base64 key>

About 420 characters: three SMS, or one QR code (a short form that fits one SMS is
at the end of this module). The sender checks the signature,
that the root equals its own ledger's at that size, and an RFC 9162 consistency proof
from there to its current checkpoint: together they prove the receiver's copy is the
sender's ledger, unchanged. The sender then exports from that size on (pruning).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from athar.crypto.identity import DeviceIdentity, verify_signature
from athar.errors import InputError, IntegrityError
from athar.vault import merkle
from athar.vault.checkpoint import Checkpoint, key_id, open_note, verifier_key
from athar.vault.events import utc_now

PREFIX = "athar.receipt/"


@dataclass(frozen=True)
class Receipt:
    receiver: str  # the receipt's name: athar.receipt/<receiver vault id>
    sender: str  # athar.vault/<sender vault id>
    size: int
    root: bytes
    signer: bytes
    text: str


def make(identity: DeviceIdentity, receiver: str, sender: str, leaves: list[bytes]) -> str:
    name = PREFIX + receiver.rsplit("/", 1)[-1]
    cp = Checkpoint(name, len(leaves), merkle.root_from_hashes(leaves), utc_now())
    lines = cp.body().split("\n")
    body = "\n".join([*lines[:3], f"of {sender}", *lines[3:]])
    kid = key_id(name, identity.public_key)
    sig = identity.sign(body.encode())
    note = body + "\n" + f"— {name} {base64.b64encode(kid + sig).decode()}\n"
    return note + verifier_key(name, identity.public_key) + "\n"


def parse(text: str) -> Receipt:
    lines = text.strip().split("\n")
    if len(lines) < 3 or not lines[0].startswith(PREFIX):
        raise InputError("this is not an Athar receipt")
    note = "\n".join(lines[:-1]) + "\n"
    signed = open_note(note, lines[-1].strip())
    senders = [x[3:] for x in lines[3:-1] if x.startswith("of ")]
    if len(senders) != 1:
        raise IntegrityError("the receipt does not name its sender")
    cp = signed.checkpoint
    return Receipt(cp.origin, senders[0], cp.size, cp.root, signed.public_key, text)


def load(path: Path) -> Receipt:
    try:
        return parse(read_text(path))
    except ValueError:
        raise InputError("this is not an Athar receipt") from None


def read_text(path: Path) -> str:
    """A receipt file's text (full or short form); a file that is not text is refused as
    not a receipt, not with a traceback (it came from another device)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file: {path}", path=str(path)) from None
    except UnicodeDecodeError:
        raise InputError("this is not an Athar receipt") from None
    except OSError as exc:
        raise InputError(
            "cannot read {path}: {reason}", path=str(path), reason=exc.strerror or str(exc)
        ) from None


def check_against(receipt: Receipt, leaves: list[bytes]) -> list[bytes]:
    """Prove the receipt's tree is a prefix of ours, unchanged; return the consistency path."""
    size = receipt.size
    if size > len(leaves):
        raise IntegrityError(
            "the receipt claims {size} events but this ledger has only {held}",
            size=size,
            held=len(leaves),
        )
    path = merkle.consistency_path_from_hashes(leaves, size)
    ok = merkle.root_from_hashes(leaves[:size]) == receipt.root and merkle.verify_consistency(
        size, len(leaves), receipt.root, merkle.root_from_hashes(leaves), path
    )
    if not ok:
        raise IntegrityError(
            "the receipt does not match this ledger: the receiver's copy differs from ours"
        )
    return path


# -- short receipts: one SMS ---------------------------------------------------------
# The same C2SP signed note without a time line, sent without what the sender can
# rebuild itself: its own vault name, and the root of its own first <size> events. What
# travels is the size, the receiver's vault id, the note's key id and the signature:
#
#     AR1 <size> <base64(receiver vault id (16) ‖ key id (4) ‖ Ed25519 signature (64))>
#
# 118 to 127 characters, all in the GSM 03.38 basic alphabet: one SMS (160). The sender
# checks the signature over the note it rebuilt with its own root, so a valid short
# receipt proves the receiver holds exactly the sender's first <size> events. The
# receiver's key is not carried: the sender must have it (an enrolled device).
SHORT_TAG = "AR1"


def _short_body(receiver_id: str, sender: str, size: int, root: bytes) -> str:
    cp = Checkpoint(PREFIX + receiver_id, size, root, "")
    lines = cp.body().split("\n")[:3]
    return "\n".join([*lines, f"of {sender}", ""])


def make_short(identity: DeviceIdentity, receiver: str, sender: str, leaves: list[bytes]) -> str:
    receiver_id = receiver.rsplit("/", 1)[-1]
    body = _short_body(receiver_id, sender, len(leaves), merkle.root_from_hashes(leaves))
    kid = key_id(PREFIX + receiver_id, identity.public_key)
    blob = bytes.fromhex(receiver_id) + kid + identity.sign(body.encode())
    return f"{SHORT_TAG} {len(leaves)} {base64.b64encode(blob).decode()}"


def is_short(text: str) -> bool:
    return text.strip().startswith(SHORT_TAG + " ")


def open_short(text: str, sender: str, leaves: list[bytes], keys: list[bytes]) -> Receipt:
    """Check a short receipt against our own ledger (*leaves*) and the device keys we
    trust (*keys*); return it as a full Receipt."""
    try:
        tag, size_text, encoded = text.strip().split(" ")
        size = int(size_text)
        blob = base64.b64decode(encoded, validate=True)
    except ValueError:  # also binascii.Error
        raise InputError("this is not an Athar receipt") from None
    if tag != SHORT_TAG or len(blob) != 84 or size < 0 or str(size) != size_text:
        raise InputError("this is not an Athar receipt")
    receiver_id, kid, sig = blob[:16].hex(), blob[16:20], blob[20:]
    name = PREFIX + receiver_id
    signers = [k for k in keys if key_id(name, k) == kid]
    if not signers:
        raise InputError(
            "a short receipt can only be checked from an enrolled device; this one is "
            "not enrolled here (ask for the full receipt)"
        )
    if size > len(leaves):
        raise IntegrityError(
            "the receipt claims {size} events but this ledger has only {held}",
            size=size,
            held=len(leaves),
        )
    root = merkle.root_from_hashes(leaves[:size])
    body = _short_body(receiver_id, sender, size, root).encode()
    for key in signers:
        if verify_signature(key, body, sig):
            return Receipt(name, sender, size, root, key, text)
    raise IntegrityError(
        "the receipt does not match this ledger: the receiver's copy differs from ours "
        "(or the receipt is for another vault, or was altered)"
    )
