"""ProofMode zips: signatures and proof hashes checked with the zip's own key; bombs,
path traversal and tampering refused or judged invalid; the zip kept in the vault."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from pathlib import Path

import pytest
from pysequoia import SignatureMode, Tsk, sign

from athar.errors import InputError
from athar.vault.vault import Vault
from athar.verify.proofmode import PROOFMODE_IMPORTED, check, import_zip, read_zip

MEDIA = "IMG_20161207_091455.jpg"


@pytest.fixture(scope="module")
def key() -> Tsk:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return Tsk.generate("ProofMode حلب <proofmode@example.org>")


def _sig(key: Tsk, data: bytes) -> bytes:
    return sign(key.signer(), data, mode=SignatureMode.DETACHED)


def proof_zip(
    key: Tsk, media: bytes = b"\xff\xd8\xff jpeg bytes " * 200, *, tamper: str = ""
) -> dict[str, bytes]:
    digest = hashlib.sha256(media).hexdigest()
    proof = json.dumps(
        {
            "File Hash SHA256": digest,
            "File Path": f"/storage/DCIM/{MEDIA}",
            "Location.Latitude": "36.2",
        },
        ensure_ascii=False,
    ).encode()
    files = {
        MEDIA: media,
        MEDIA + ".asc": _sig(key, media),
        f"{digest}.proof.json": proof,
        f"{digest}.proof.json.asc": _sig(key, proof),
        "pubkey.asc": str(key.extract_certificate()).encode(),
    }
    if tamper == "media":
        files[MEDIA] = media[:-1] + b"!"
    if tamper == "proof":
        files[f"{digest}.proof.json"] = proof.replace(b"36.2", b"33.5")
    return files


def pack(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_valid_proofmode_zip(key: Tsk) -> None:
    report = check(read_zip(pack(proof_zip(key))))
    assert report.ok and report.signer == key.extract_certificate().fingerprint
    (f,) = report.files
    assert (f.name, f.signature, f.proof) == (MEDIA, "valid", "matches")


@pytest.mark.parametrize("tamper", ["media", "proof"])
def test_tampered_zip_is_invalid(key: Tsk, tamper: str) -> None:
    report = check(read_zip(pack(proof_zip(key, tamper=tamper))))
    assert not report.ok
    assert report.to_json()["verdict"] == "invalid"
    if tamper == "media":
        assert report.files[0].signature == "invalid" and report.files[0].proof == "mismatch"
    else:
        assert report.proofs_signed == "invalid"


def test_signature_by_another_key_is_invalid(key: Tsk) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        other = Tsk.generate("someone else")
    files = proof_zip(key)
    files[MEDIA + ".asc"] = _sig(other, files[MEDIA])
    report = check(read_zip(pack(files)))
    assert not report.ok and report.files[0].signature == "invalid"


@pytest.mark.parametrize(
    "name", ["../../etc/cron.d/x", "/abs/path.jpg", "a/../../b.jpg", "C:\\x.jpg", "dir\\..\\x"]
)
def test_path_traversal_is_refused(key: Tsk, name: str) -> None:
    files = proof_zip(key)
    files[name] = b"payload"
    with pytest.raises(InputError, match="outside its folder"):
        read_zip(pack(files))


def test_zip_bomb_is_refused(key: Tsk) -> None:
    files = proof_zip(key)
    files["filler.bin"] = bytes(50 << 20)  # 50 MiB of zeros: ~50 kB deflated
    data = pack(files, zipfile.ZIP_DEFLATED)
    assert len(data) < 1 << 20
    with pytest.raises(InputError, match="zip bomb"):
        read_zip(data)


def test_not_a_zip_and_symlink_are_refused(key: Tsk) -> None:
    with pytest.raises(InputError, match="not a readable zip"):
        read_zip(b"PK\x03\x04 broken")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("link.jpg")
        info.external_attr = 0o120777 << 16
        z.writestr(info, "/etc/passwd")
    with pytest.raises(InputError, match="symbolic link"):
        read_zip(buf.getvalue())


def test_import_keeps_zip_and_records_outcome(tmp_path: Path, vault: Vault, key: Tsk) -> None:
    zip_path = tmp_path / "proofmode-حلب.zip"
    zip_path.write_bytes(pack(proof_zip(key)))
    report = import_zip(vault, zip_path)
    assert report.ok and report.item is not None
    assert b"".join(vault.read(report.item)) == zip_path.read_bytes()
    events = [e.event for e in vault.events() if e.event.kind == PROOFMODE_IMPORTED]
    assert len(events) == 1 and events[0].body["verdict"] == "valid"
    assert events[0].body["item"] == report.item.id
    # nothing extracted anywhere
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["proofmode-حلب.zip", "vault"])
    assert not any(MEDIA in p.name for p in vault.root.rglob("*"))


def test_refused_zip_leaves_vault_unchanged(tmp_path: Path, vault: Vault, key: Tsk, cli) -> None:  # type: ignore[no-untyped-def]
    files = proof_zip(key)
    files["../escape.jpg"] = b"x"
    bad = tmp_path / "bad.zip"
    bad.write_bytes(pack(files))
    size = vault.ledger.size()
    with pytest.raises(InputError):
        import_zip(vault, bad)
    assert vault.ledger.size() == size and vault.items() == []
    vault.close()
    out = cli("import-proofmode", str(bad), "--json")
    assert out.exit_code == 2 and "outside its folder" in json.loads(out.stdout)["error"]
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(pack(proof_zip(key, tamper="media")))
    out = cli("import-proofmode", str(tampered), "--json")
    assert out.exit_code == 6 and json.loads(out.stdout)["verdict"] == "invalid"
    good = tmp_path / "good.zip"
    good.write_bytes(pack(proof_zip(key, media=b"\xff\xd8\xff other " * 100)))
    out = cli("import-proofmode", str(good))
    assert out.exit_code == 0 and "valid" in out.stdout
