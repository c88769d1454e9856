"""Signed checkpoints in the C2SP tlog-checkpoint / signed-note format.

A checkpoint commits to the ledger's size and Merkle root at a moment. The format is the
one transparency logs use (c2sp.org/tlog-checkpoint, c2sp.org/signed-note), so existing
tools can read it:

    <origin>
    <tree size>
    <base64 root hash>
    time <RFC 3339 UTC>

    — <key name> <base64(key id ‖ Ed25519 signature)>

A checkpoint can be checked anywhere with only its verifier key
``<name>+<hex key id>+<base64(0x01 ‖ public key)>``: no vault, no passphrase.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from athar.crypto.identity import DeviceIdentity, fingerprint, verify_signature
from athar.errors import InputError, IntegrityError
from athar.vault.fsutil import atomic_write

ED25519_ALG = b"\x01"
FILE_TYPE = "athar.checkpoint/1"


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519_ALG + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    encoded = base64.b64encode(ED25519_ALG + public_key).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes]:
    try:
        name, kid, encoded = vkey.split("+", 2)  # names hold no "+"; base64 may
        raw = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error):
        raise InputError("malformed verifier key") from None
    if len(raw) != 33 or raw[:1] != ED25519_ALG or not name:
        raise InputError("verifier key is not an Ed25519 key")
    if key_id(name, raw[1:]).hex() != kid:
        raise InputError("verifier key id does not match its key")
    return name, raw[1:]


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: str

    def body(self) -> str:
        return (
            f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"
            f"time {self.time}\n"
        )


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str
    verifier_key: str

    @property
    def public_key(self) -> bytes:
        return parse_verifier_key(self.verifier_key)[1]

    def to_json(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "type": FILE_TYPE,
            "origin": cp.origin,
            "size": cp.size,
            "root": cp.root.hex(),
            "time": cp.time,
            "signer_fingerprint": fingerprint(self.public_key),
            "verifier_key": self.verifier_key,
            "note": self.note,
        }

    def write(self, path: Path) -> None:
        """Private (0600) and whole or not at all, like every file Athar writes."""
        atomic_write(
            path, (json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n").encode()
        )


def sign_checkpoint(cp: Checkpoint, identity: DeviceIdentity) -> SignedCheckpoint:
    body = cp.body()
    kid = key_id(cp.origin, identity.public_key)
    sig = identity.sign(body.encode())
    note = body + "\n" + f"— {cp.origin} {base64.b64encode(kid + sig).decode()}\n"
    return SignedCheckpoint(cp, note, verifier_key(cp.origin, identity.public_key))


def open_note(note: str, vkey: str) -> SignedCheckpoint:
    """Verify a signed note against *vkey* and parse its checkpoint; raise if anything is off."""
    name, public_key = parse_verifier_key(vkey)
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise IntegrityError("checkpoint has no signature block")
    body += "\n"
    kid = key_id(name, public_key)
    good = False
    for line in sigs.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "—" or parts[1] != name:
            continue
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except ValueError:  # binascii.Error, and non-ASCII text (a plain ValueError)
            continue
        if raw[:4] == kid and verify_signature(public_key, body.encode(), raw[4:]):
            good = True
    if not good:
        raise IntegrityError("checkpoint signature does not verify with key {key}", key=vkey)
    lines = body.splitlines()
    try:
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        size = int(size_text)
        root = base64.b64decode(root_text, validate=True)
        times = [x[5:] for x in lines[3:] if x.startswith("time ")]
    except (IndexError, ValueError, binascii.Error):
        raise IntegrityError("checkpoint body is malformed") from None
    if size < 0 or len(root) != 32 or origin != name or str(size) != size_text:
        raise IntegrityError("checkpoint body is malformed")
    cp = Checkpoint(origin, size, root, times[0] if times else "")
    return SignedCheckpoint(cp, note, vkey)


def load_checkpoint_file(path: Path) -> SignedCheckpoint:
    """Read a checkpoint JSON file and verify its note; the extra fields must agree."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("type") != FILE_TYPE:
            raise ValueError
        signed = open_note(str(data["note"]), str(data["verifier_key"]))
    except FileNotFoundError:
        raise InputError("no such file: {path}", path=str(path)) from None
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError):
        raise InputError("{path} is not an Athar checkpoint file", path=str(path)) from None
    cp = signed.checkpoint
    if data.get("size") != cp.size or data.get("root") != cp.root.hex():
        raise IntegrityError("checkpoint file fields disagree with its signed note")
    return signed
