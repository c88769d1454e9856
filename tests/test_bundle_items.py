"""Files that arrived in bundles behave like files added here: `ls`, `get`, `verify`
see them (through the event.imported wrapper), and shredding one anywhere destroys the
receiver's copy too."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from athar.cli.main import app
from athar.errors import InputError
from athar.sync import service
from athar.vault.audit import audit
from athar.vault.vault import Vault

PW = "كلمة سر طويلة"


def make(root: Path, name: str) -> Vault:
    return Vault.create(root / name, PW)


def befriend(a: Vault, b: Vault) -> None:
    for v, other in ((a, b), (b, a)):
        c = service.card(other)
        service.enrol(v, c["key"], c["age_recipient"], other.root.name, admin=False)


def send(src: Vault, dst: Vault, folder: Path) -> service.ImportOutcome:
    files = service.export_bundle(src, [service.card(dst)["age_recipient"]], folder).files
    return service.import_bundles(dst, files)


def cli(v: Vault, *args: str) -> tuple[int, str]:
    env = {"ATHAR_VAULT": str(v.root), "ATHAR_PASSPHRASE": PW, "ATHAR_LANG": "en"}
    r = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return r.exit_code, r.output


def blob_files(v: Vault) -> int:
    return sum(1 for p in (v.root / "blobs").rglob("*") if p.is_file())


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Vault, Vault]:
    a, b = make(tmp_path, "field"), make(tmp_path, "office")
    befriend(a, b)
    return a, b


def test_ls_get_and_verify_see_imported_files(pair: tuple[Vault, Vault], tmp_path: Path) -> None:
    a, b = pair
    text = "شهادة: سقطت القذيفة قرب المدرسة عند الفجر\n" * 40
    (tmp_path / "شهادة.txt").write_text(text, encoding="utf-8")
    video = os.urandom(700_000)  # above the inline limit: a blob file
    (tmp_path / "فيديو.mp4").write_bytes(video)
    added = {r.item.name: r.item for r in a.add(list(tmp_path.glob("*.*"))).results if r.item}
    send(a, b, tmp_path / "out")

    code, out = cli(b, "ls", "--json")
    assert code == 0, out
    listed = {i["name"]: i for i in json.loads(out)}
    assert set(listed) == {"شهادة.txt", "فيديو.mp4"}
    for name, item in added.items():
        # the origin's id (what a later shredding names) and its signer, not the wrapper's
        assert listed[name]["id"] == item.id and listed[name]["device"] == a.device_fingerprint
    code, out = cli(b, "get", listed["فيديو.mp4"]["id"][:10], "-o", str(tmp_path / "v.mp4"))
    assert code == 0, out
    assert (tmp_path / "v.mp4").read_bytes() == video
    code, out = cli(b, "get", listed["شهادة.txt"]["id"][:10], "-o", str(tmp_path / "t.txt"))
    assert code == 0 and (tmp_path / "t.txt").read_text(encoding="utf-8") == text

    code, out = cli(b, "verify", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"], report["problems"]
    assert report["items"] == 2 and report["blobs_checked"] == 2


def test_verify_names_a_corrupted_imported_file(pair: tuple[Vault, Vault], tmp_path: Path) -> None:
    a, b = pair
    (tmp_path / "صورة.bin").write_bytes(os.urandom(300_000))
    a.add([tmp_path / "صورة.bin"])
    send(a, b, tmp_path / "out")
    (victim,) = [p for p in (b.root / "blobs").rglob("*") if p.is_file()]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    report = audit(b)
    assert not report.ok and any("صورة.bin" in p.where for p in report.problems)


def test_foreign_shredding_destroys_the_receivers_copy(
    pair: tuple[Vault, Vault], tmp_path: Path
) -> None:
    a, b = pair
    (tmp_path / "وجه-شاهد.jpg").write_bytes(os.urandom(500_000))
    (tmp_path / "بقية.txt").write_text("تبقى هذه", encoding="utf-8")
    a.add([tmp_path / "وجه-شاهد.jpg", tmp_path / "بقية.txt"])
    send(a, b, tmp_path / "1")
    assert blob_files(b) == 1
    victim = next(i for i in a.items() if i.name == "وجه-شاهد.jpg")
    a.shred(victim, "خطر على الشاهد")
    got = send(a, b, tmp_path / "2")
    assert got.imported[0].shredded == 1
    held = {i.name: i for i in b.items()}
    assert held["وجه-شاهد.jpg"].shredded and not held["بقية.txt"].shredded
    with pytest.raises(InputError, match="destroyed"):
        b.read(held["وجه-شاهد.jpg"])
    assert blob_files(b) == 0  # the encrypted file is gone, not only its key
    assert b"".join(b.read(held["بقية.txt"])).decode() == "تبقى هذه"
    report = audit(b)
    assert report.ok and report.items == 1, report.problems
    # the shredding travels on: b's next bundle to a third vault carries it
    c = make(tmp_path, "lawyer")
    befriend(b, c)
    befriend(a, c)  # c trusts the events a signed that b forwards
    send(b, c, tmp_path / "3")
    assert {i.name: i.shredded for i in c.items()} == {"وجه-شاهد.jpg": True, "بقية.txt": False}
    assert blob_files(c) == 0 and audit(c).ok


def test_receiver_shreds_an_imported_item_and_the_origin_follows(
    pair: tuple[Vault, Vault], tmp_path: Path
) -> None:
    a, b = pair
    (tmp_path / "تسجيل.ogg").write_bytes(os.urandom(400_000))
    a.add([tmp_path / "تسجيل.ogg"])
    send(a, b, tmp_path / "1")
    (item,) = b.items()
    b.shred(item, "طلب الشاهد")
    assert audit(b).ok
    got = send(b, a, tmp_path / "2")
    assert got.imported[0].shredded == 1
    (mine,) = a.items()
    assert mine.shredded and blob_files(a) == 0
    report = audit(a)
    assert report.ok and report.items == 0, report.problems


def test_added_and_shredded_in_one_bundle_never_arrives(
    pair: tuple[Vault, Vault], tmp_path: Path
) -> None:
    a, b = pair
    (tmp_path / "خريطة.png").write_bytes(os.urandom(200_000))
    a.add([tmp_path / "خريطة.png"])
    a.shred(a.items()[0], "نُشر خطأً")
    got = send(a, b, tmp_path / "1")
    assert got.imported[0].new_blobs == 0 and blob_files(b) == 0
    assert [i.shredded for i in b.items()] == [True]
    assert audit(b).ok


def test_same_file_held_by_both_sides(pair: tuple[Vault, Vault], tmp_path: Path) -> None:
    """Two devices that recorded the same file: the copy held is not sent again, both
    items list and open, and verify does not call either key missing."""
    a, b = pair
    content = "بيان مشترك ".encode() * 30_000
    (tmp_path / "بيان.txt").write_bytes(content)
    a.add([tmp_path / "بيان.txt"])
    b.add([tmp_path / "بيان.txt"])
    got = send(a, b, tmp_path / "1")
    assert got.imported[0].new_blobs == 0
    items = b.items()
    assert len(items) == 2 and len({i.id for i in items}) == 2
    digest = hashlib.sha256(content).hexdigest()
    for item in items:
        assert hashlib.sha256(b"".join(b.read(item))).hexdigest() == digest
    report = audit(b)
    assert report.ok and report.items == 2, report.problems


def test_an_imported_file_is_proved_as_its_origin_signed_it(
    pair: tuple[Vault, Vault], tmp_path: Path
) -> None:
    """A proof from the receiver checks against the file itself, with no vault, and names
    the origin's item id and signer, not the receiver's wrapper event."""
    a, b = pair
    photo = tmp_path / "صورة.jpg"
    photo.write_bytes(os.urandom(300_000))
    item = a.add([photo]).results[0].item
    assert item is not None
    send(a, b, tmp_path / "out")
    cp, proof = tmp_path / "cp.json", tmp_path / "proof.json"
    assert cli(b, "checkpoint", "-o", str(cp))[0] == 0
    code, out = cli(b, "prove", item.id[:12], "-o", str(proof))
    assert code == 0, out
    code, out = cli(b, "check-proof", str(proof), "--checkpoint", str(cp), "--file", str(photo))
    assert code == 0, out
    assert item.id in out or item.id[:12] in out
    other = tmp_path / "other.jpg"
    other.write_bytes(os.urandom(300_000))
    code, out = cli(b, "check-proof", str(proof), "--checkpoint", str(cp), "--file", str(other))
    assert code == 6, out
