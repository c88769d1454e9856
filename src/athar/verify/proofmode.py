"""ProofMode export zips: check their OpenPGP signatures and proof hashes, keep them.

A ProofMode zip holds the media, ``<sha256>.proof.json``/``.csv`` per file, detached
``.asc`` signatures over media and proofs, and the phone's ``pubkey.asc``. The zip is
read in memory only, never extracted: it is added to the vault whole (so the proof
material stays with the item as its custody record), and a signed
``proofmode.imported`` event records what was checked and the outcome. Signatures are
checked with Sequoia-PGP (``pysequoia``) against the key shipped in the zip; that key
proves consistency, not identity: who holds it must be established out of band (the
report shows its fingerprint for that).

Hostile zips are refused before anything is read: too many entries, too large in
total, suspicious compression ratios (zip bombs), names that climb out of a folder or
are absolute, symbolic links, duplicate names.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import stat
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from athar.errors import InputError
from athar.vault.items import Item
from athar.vault.vault import Vault

PROOFMODE_IMPORTED = "proofmode.imported"
MAX_ENTRIES = 5000
MAX_TOTAL = 2 << 30  # uncompressed bytes, all entries
MAX_RATIO = 100  # uncompressed / compressed for one entry (media barely compress)
_SIDECARS = (".asc", ".proof.json", ".proof.csv", ".ots", ".gst", ".c2pa")


@dataclass
class FileCheck:
    name: str
    sha256: str
    signature: str  # valid | invalid | missing
    proof: str  # matches | mismatch | missing
    in_vault: str | None = None  # id of an item with the same content, if any

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "signature": self.signature,
            "proof": self.proof,
            "in_vault": self.in_vault,
        }


@dataclass
class ProofReport:
    signer: str | None  # fingerprint of pubkey.asc
    files: list[FileCheck] = field(default_factory=list)
    proofs_signed: str = "missing"  # the proof files' own signatures: valid | invalid | missing
    item: Item | None = None  # the zip, as kept in the vault

    @property
    def ok(self) -> bool:
        return (
            bool(self.files)
            and self.signer is not None
            and self.proofs_signed == "valid"
            and all(f.signature == "valid" and f.proof == "matches" for f in self.files)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": "valid" if self.ok else "invalid",
            "signer": self.signer,
            "proofs_signed": self.proofs_signed,
            "files": [f.to_json() for f in self.files],
            "item": self.item.id if self.item else None,
        }


def _safe_name(name: str) -> bool:
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return False
    if len(name) > 1 and name[1] == ":":
        return False  # a Windows drive
    return ".." not in PurePosixPath(name).parts


def read_zip(data: bytes) -> dict[str, bytes]:
    """The zip's files by name, after refusing anything hostile."""
    import io

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):  # version 12.2
        raise InputError("this is not a readable zip file") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise InputError("the zip has more than {limit} entries", limit=MAX_ENTRIES)
        total = 0
        names: set[str] = set()
        for info in infos:
            if not _safe_name(info.filename):
                raise InputError(
                    "the zip names a file outside its folder ({name}); refused",
                    name=info.filename[:120],
                )
            if stat.S_ISLNK(info.external_attr >> 16):
                raise InputError(
                    "the zip holds a symbolic link ({name}); refused", name=info.filename[:120]
                )
            if info.filename in names:
                raise InputError("the zip names {name} twice; refused", name=info.filename[:120])
            names.add(info.filename)
            total += info.file_size
            if total > MAX_TOTAL:
                raise InputError(
                    "the zip unpacks to more than {limit} bytes; refused", limit=MAX_TOTAL
                )
            if info.file_size > 1 << 20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise InputError(
                    "the zip entry {name} expands {ratio} times; refused as a possible zip bomb",
                    name=info.filename[:120],
                    ratio=info.file_size // max(info.compress_size, 1),
                )
        out: dict[str, bytes] = {}
        for info in infos:
            if info.is_dir():
                continue
            try:
                with archive.open(info) as fh:
                    content = fh.read(info.file_size + 1)  # a header may lie about the size
            except (  # RuntimeError: encrypted entry; zlib/lzma: damaged compressed data
                zipfile.BadZipFile,
                OSError,
                ValueError,
                EOFError,
                NotImplementedError,
                RuntimeError,
                zlib.error,
                lzma.LZMAError,
            ):
                raise InputError(
                    "the zip entry {name} is damaged", name=info.filename[:120]
                ) from None
            if len(content) != info.file_size:
                raise InputError("the zip entry {name} is damaged", name=info.filename[:120])
            out[info.filename] = content
    return out


def _verify(data: bytes, signature: bytes | None, cert: Any) -> str:
    if signature is None:
        return "missing"
    if cert is None:
        return "invalid"
    from pysequoia import Sig, verify

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            result = verify(data, store=lambda _ids: [cert], signature=Sig.from_bytes(signature))
    except (RuntimeError, ValueError, TypeError):
        return "invalid"
    return "valid" if result.valid_sigs else "invalid"


def check(files: dict[str, bytes]) -> ProofReport:
    """Check every media file's signature and its proof's recorded SHA-256."""
    from pysequoia import Cert

    key_name = next((n for n in files if PurePosixPath(n).name == "pubkey.asc"), None)
    cert = None
    if key_name is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                cert = Cert.from_bytes(files[key_name])
        except (RuntimeError, ValueError, TypeError):
            cert = None
    report = ProofReport(signer=cert.fingerprint if cert is not None else None)
    proofs: dict[str, str] = {}  # sha256 recorded by a proof -> proof file name
    proof_sigs: list[str] = []
    for name, content in files.items():
        if name.endswith(".proof.json"):
            try:
                doc = json.loads(content)
                recorded = str(doc.get("File Hash SHA256") or doc.get("SHA256") or "").lower()
            except (ValueError, AttributeError, RecursionError):  # deep JSON
                recorded = ""
            if recorded:
                proofs[recorded] = name
            proof_sigs.append(_verify(content, files.get(name + ".asc"), cert))
    if proof_sigs:
        report.proofs_signed = (
            "valid"
            if all(s == "valid" for s in proof_sigs)
            else "missing"
            if all(s == "missing" for s in proof_sigs)
            else "invalid"
        )
    for name, content in sorted(files.items()):
        base = PurePosixPath(name).name
        if base == "pubkey.asc" or name.endswith(_SIDECARS) or base.startswith("."):
            continue
        digest = hashlib.sha256(content).hexdigest()
        proof_name = proofs.get(digest)
        named = next((n for n in files if PurePosixPath(n).name == f"{digest}.proof.json"), None)
        proof = "matches" if proof_name else ("mismatch" if named or proofs else "missing")
        report.files.append(
            FileCheck(name, digest, _verify(content, files.get(name + ".asc"), cert), proof)
        )
    return report


def import_zip(vault: Vault, path: Path) -> ProofReport:
    """Check a ProofMode zip, keep it in the vault and record the outcome (signed).
    A zip that is refused (bomb, traversal, damage) leaves the vault as it was."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            "cannot read {path}: {reason}", path=str(path), reason=exc.strerror or str(exc)
        ) from None
    report = check(read_zip(data))
    by_sha = {i.sha256: i.id for i in vault.items() if not i.shredded}
    for f in report.files:
        f.in_vault = by_sha.get(f.sha256)
    added = vault.add([path], note="ProofMode")
    item = added.results[0].item
    if item is None:
        raise InputError(
            "{path} could not be added: {reason}",
            path=str(path),
            reason=str(added.results[0].reason),
        )
    if hashlib.sha256(data).hexdigest() != item.sha256:
        raise InputError("the file changed while it was being imported")
    report.item = item
    body = {"item": item.id, **report.to_json()}
    with vault.ledger.transaction() as tx:
        tx.append(PROOFMODE_IMPORTED, body)
    return report
