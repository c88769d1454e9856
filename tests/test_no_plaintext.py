"""Done-when: no plaintext, file name or plaintext hash of an added item can be found
anywhere in the vault directory — searched as a seizing adversary would, in every
encoding they might try."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from athar.vault.vault import Vault
from conftest import PASSPHRASE

SECRET_TEXT = "الشاهد سمير الحلبي رأى الطائرة فوق حي الصاخور"  # a planted witness name
SECRET_NAME = "شهادة-سمير-الحلبي.txt"
NOTE = "ملاحظة سرية عن المصدر"


def _needles(data: bytes, name: str) -> dict[str, bytes]:
    sha = hashlib.sha256(data).digest()
    md5 = hashlib.md5(data).digest()
    sha1 = hashlib.sha1(data).digest()
    out = {
        "content": data[:40],
        "content-utf16": data.decode("utf-8", "ignore")[:15].encode("utf-16-le"),
        "name": name.encode(),
        "name-utf16": name.encode("utf-16-le"),
        "note": NOTE.encode(),
        "sha256-raw": sha,
        "sha256-hex": sha.hex().encode(),
        "sha256-HEX": sha.hex().upper().encode(),
        "sha256-b64": base64.b64encode(sha).rstrip(b"="),
        "md5-hex": md5.hex().encode(),
        "sha1-hex": sha1.hex().encode(),
    }
    return out


def _scan(root: Path, needles: dict[str, bytes]) -> list[str]:
    hits = []
    for f in root.rglob("*"):
        if f.is_file():
            blob = f.read_bytes()
            hits += [
                f"{label} in {f.relative_to(root)}" for label, n in needles.items() if n in blob
            ]
        for label, n in needles.items():
            if n.decode("utf-8", "ignore") and n.decode("utf-8", "ignore") in f.name:
                hits.append(f"{label} in file name {f.name}")
    return hits


def test_nothing_identifying_on_disk_during_and_after_a_session(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    text = (SECRET_TEXT + "\n") * 50
    (src / SECRET_NAME).write_text(text, encoding="utf-8")
    binary = bytes(range(256)) * 400
    (src / "aerial-2017-03-14.jpg").write_bytes(binary)
    root = tmp_path / "vault"
    with Vault.create(root, PASSPHRASE) as vault:
        vault.add([src], note=NOTE)
        vault.checkpoint()
        # While the session is still open (WAL and shm files exist): scan now too.
        needles = _needles(text.encode(), SECRET_NAME) | {
            f"bin-{k}": v for k, v in _needles(binary, "aerial-2017-03-14.jpg").items()
        }
        during = _scan(root, needles)
    after = _scan(root, needles)
    assert during == [] and after == []
    # The control: the scanner does find the needles where they are in plain text.
    assert _scan(src, needles)
    # And the device public key (which would link the laptop to published proofs) is not
    # on disk either.
    with Vault.open(root, PASSPHRASE) as vault:
        pub = vault.keys.identity.public_key
    assert _scan(root, {"pubkey": pub, "pubkey-b64": base64.b64encode(pub)}) == []


def test_records_leave_nothing_readable_on_disk(tmp_path: Path) -> None:
    """Names of victims and witnesses, a source's phone number, an imported list and a
    rebuilt projection: none of it readable in the vault folder, during or after."""
    from athar.records import csvimport
    from athar.records.service import Records

    victim, witness, phone = "رامي سمير الصاخوري", "أم خالد الصاخورية", "+963-944-123-456"
    listing = tmp_path / "list.csv"
    listing.write_text(
        f"name_ar.full,status,status.date\n{victim},killed,2016-11-20\nنورا الحلبي,detained,2016\n",
        encoding="utf-8",
    )
    root = tmp_path / "vault"
    needles = {
        "victim": victim.encode(),
        "victim-utf16": victim.encode("utf-16-le"),
        "witness": witness.encode(),
        "phone": phone.encode(),
        "listed": "نورا الحلبي".encode(),
        "folded-token": "الصاخوريه".encode(),  # the witness's name as the search index folds it
    }
    with Vault.create(root, PASSPHRASE) as vault, Records(vault) as records:
        source = records.create("source", {"type": "witness", "name": witness, "contact": phone})
        incident = records.create("incident", {"title.ar": f"مقتل {victim}", "date": "2016-11-20"})
        records.link(incident, "source", source)
        csvimport.import_csv(records, listing, "person")
        assert records.find("الصاخوري")  # searchable while open…
        during = _scan(root, needles)
        records.rebuild()
        after_rebuild = _scan(root, needles)
    assert during == [] and after_rebuild == [] and _scan(root, needles) == []
    assert _scan(tmp_path, needles)  # the control: the CSV itself holds them
