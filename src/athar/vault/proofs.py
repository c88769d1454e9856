"""Checking an inclusion proof on a machine that has neither the vault nor its passphrase.

A proof file (made by `athar prove`) holds the item's signed event, its position, the
Merkle audit path and the checkpoint it was made against. Checking it needs only the
files: the event's own Ed25519 signature, the RFC 9162 path up to the root, and the
checkpoint's signature. A checkpoint the checker already trusts (received earlier, or
published) can be given instead of the one embedded in the proof.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from athar.crypto.identity import fingerprint
from athar.errors import InputError
from athar.vault import merkle
from athar.vault.checkpoint import SignedCheckpoint, open_note
from athar.vault.events import parse_entry, unwrap
from athar.vault.vault import PROOF_TYPE


@dataclass
class ProofReport:
    ok: bool = False
    item: dict[str, Any] = field(default_factory=dict)
    event_id: str = ""
    event_signer: str = ""
    checkpoint_signer: str = ""
    tree_size: int = 0
    index: int = 0
    file_matches: bool | None = None
    failures: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_proof(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file: {path}", path=str(path)) from None
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep JSON
        raise InputError("{path} is not a proof file (not JSON)", path=str(path)) from None
    if not isinstance(data, dict) or data.get("type") != PROOF_TYPE:
        raise InputError("{path} is not an Athar proof file", path=str(path))
    return data


def check_proof(
    proof: dict[str, Any], trusted: SignedCheckpoint | None = None, file: Path | None = None
) -> ProofReport:
    report = ProofReport()
    fail = report.failures.append
    try:
        entry = base64.b64decode(proof["entry"], validate=True)
        index, size = int(proof["index"]), int(proof["tree_size"])
        path = [bytes.fromhex(h) for h in proof["path"]]
        embedded = proof["checkpoint"]
        embedded_cp = open_note(str(embedded["note"]), str(embedded["verifier_key"]))
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise InputError("the proof file is malformed") from None
    outer = parse_entry(entry)  # the ledger leaf: the item's event, or a wrapper carrying it
    signed = unwrap(outer)  # an item that arrived in a bundle is proved as its origin signed it
    report.item = dict(signed.event.body)
    report.event_id = signed.id
    report.event_signer = fingerprint(signed.event.device)
    report.index, report.tree_size = index, size
    if not outer.signature_valid() or not signed.signature_valid():
        fail("the event's signature does not verify")
    cp = trusted or embedded_cp
    report.checkpoint_signer = fingerprint(cp.public_key)
    if cp.checkpoint.size != size:
        fail(
            f"the proof is for a ledger of {size} events but the checkpoint covers "
            f"{cp.checkpoint.size}; make the proof against that checkpoint "
            "(athar prove ID --checkpoint FILE)"
        )
    elif not merkle.verify_inclusion(entry, index, size, path, cp.checkpoint.root):
        fail("the Merkle path does not lead from the event to the checkpoint's root")
    if file is not None:
        digest = hashlib.sha256()
        try:
            with open(file, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
        except OSError as exc:
            raise InputError(
                "cannot read {path}: {reason}", path=str(file), reason=exc.strerror or str(exc)
            ) from None
        report.file_matches = digest.hexdigest() == signed.event.body.get("sha256")
        if not report.file_matches:
            fail("the given file's SHA-256 differs from the one recorded in the event")
    report.ok = not report.failures
    return report
