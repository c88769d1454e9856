"""Bundles (issue 5): export/import between real vaults, parts with erasure coding,
the Debian age tool, and every bad input the issue names (nothing committed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import segno

from athar.errors import AtharError, InputError, IntegrityError
from athar.records.service import Records
from athar.sync import agekeys, exchange, service
from athar.vault.audit import audit
from athar.vault.vault import Vault

PW = "كلمة سر طويلة"


def make(root: Path, name: str) -> Vault:
    return Vault.create(root / name, PW)


def befriend(*vaults: Vault) -> None:
    for v in vaults:
        for other in vaults:
            if other is not v:
                c = service.card(other)
                service.enrol(v, c["key"], c["age_recipient"], other.root.name, admin=False)


def to(v: Vault) -> str:
    return service.card(v)["age_recipient"]


def state(v: Vault) -> tuple[int, int]:
    """(ledger events, blob files): what a refused import must leave unchanged."""
    blobs = v.root / "blobs"
    return v.ledger.size(), sum(1 for p in blobs.rglob("*") if p.is_file())


def record(v: Vault, rid: str) -> dict[str, Any]:
    with Records(v) as r:
        data = r.get(rid).to_json()
    return {k: data[k] for k in ("id", "type", "fields", "deleted")}


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Vault, Vault]:
    a, b = make(tmp_path, "field"), make(tmp_path, "office")
    befriend(a, b)
    return a, b


def test_records_and_files_arrive_attributed_to_their_origin(
    pair: tuple[Vault, Vault], tmp_path: Path
) -> None:
    a, b = pair
    (tmp_path / "شهادة.txt").write_text("رأيت القصف على السوق " * 50, encoding="utf-8")
    big = os.urandom(600_000)
    (tmp_path / "video.bin").write_bytes(big)
    a.add([tmp_path / "شهادة.txt", tmp_path / "video.bin"])
    with Records(a) as r:
        pid = r.create("person", {"name_ar.full": "محمد الحلبي", "sex": "ذكر"})
    out = service.export_bundle(a, [to(b)], tmp_path / "out")
    assert len(out.files) == 1 and out.blobs == 2
    got = service.import_bundles(b, out.files)
    (rep,) = got.imported
    assert rep.new_events == out.events - 0 and rep.new_blobs == 2
    assert rep.devices == {a.device_fingerprint: rep.new_events}
    assert record(b, pid) == record(a, pid)
    with Records(b) as r:
        assert r.history(pid)[0]["device"] == a.device_fingerprint
    assert (
        b"".join(exchange.blob_plaintext(b, __import__("hashlib").sha256(big).hexdigest())) == big
    )
    assert audit(b).ok, audit(b).problems
    # idempotent: the same bundle again changes nothing
    before = state(b)
    again = service.import_bundles(b, out.files)
    assert again.imported[0].nothing_new and state(b) == before
    # the projection rebuilt from scratch sees the same record
    with Records(b) as r:
        r.rebuild()
    assert record(b, pid) == record(a, pid)


def test_debian_age_tool_opens_a_bundle(pair: tuple[Vault, Vault], tmp_path: Path) -> None:
    if shutil.which("age") is None:
        if os.environ.get("CI"):
            pytest.fail("the age tool is missing; CI must install it (apt age)", pytrace=False)
        pytest.skip("age is not installed")
    a, b = pair
    (tmp_path / "note.txt").write_text("نص عربي", encoding="utf-8")
    a.add([tmp_path / "note.txt"])
    (bundle,) = service.export_bundle(a, [to(b)], tmp_path / "out").files
    ident = tmp_path / "id.txt"
    ident.write_text(agekeys.identity_string(b.keys.identity.encryption_secret) + "\n")
    ident.chmod(0o600)
    plain = subprocess.run(
        ["age", "-d", "-i", str(ident), str(bundle)], check=True, capture_output=True, timeout=60
    ).stdout
    listing = (
        subprocess.run(["tar", "-t"], input=plain, check=True, capture_output=True, timeout=60)
        .stdout.decode()
        .split()
    )
    sha = __import__("hashlib").sha256("نص عربي".encode()).hexdigest()
    assert listing[:2] == ["athar-bundle/manifest.json", "athar-bundle/events.jsonl"]
    assert f"athar-bundle/blobs/{sha}" in listing


def test_parts_any_order_twice_mixed_and_missing(pair: tuple[Vault, Vault], tmp_path: Path) -> None:
    a, b = pair
    (tmp_path / "f.bin").write_bytes(os.urandom(300_000))
    a.add([tmp_path / "f.bin"])
    first = service.export_bundle(a, [to(b)], tmp_path / "one", part_size=20_000, redundancy=0.25)
    n = len(first.files)
    assert n >= 18
    # wire overhead: n/k plus the trailers
    payload = sum(p.stat().st_size for p in first.files)
    assert (
        payload / (first.wire_bytes / n * (n - (n - round(n / 1.25)))) <= n / round(n / 1.25) + 0.02
    )
    (tmp_path / "g.bin").write_bytes(os.urandom(50_000))
    a.add([tmp_path / "g.bin"])
    second = service.export_bundle(a, [to(b)], tmp_path / "two", part_size=20_000, redundancy=0.25)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for p in first.files[::-1] + second.files:
        shutil.copy(p, inbox / p.name)
    shutil.copy(first.files[0], inbox / ("copy-" + first.files[0].name))
    # lose as many parts as the redundancy covers from the first bundle, too many of the second
    lost = [inbox / p.name for p in first.files[1:4]]
    for p in lost:
        p.unlink()
    for p in second.files[:-1]:
        (inbox / p.name).unlink()
    got = service.import_bundles(b, [inbox])
    assert len(got.imported) == 1 and got.imported[0].new_blobs == 1
    ((_, need, absent),) = got.incomplete
    assert need >= 1 and absent  # the second bundle says which parts are missing
    with pytest.raises(InputError, match="incomplete") as err:
        service.import_bundles(b, [inbox / p.name for p in second.files[-1:]])
    assert second.files[0].name.rsplit("-", 1)[-1].split(".")[0].lstrip("0") in str(err.value)


@pytest.mark.parametrize("fault", ["tampered", "truncated"])
def test_damaged_part_is_named_and_nothing_is_committed(
    pair: tuple[Vault, Vault], tmp_path: Path, fault: str
) -> None:
    a, b = pair
    (tmp_path / "f.bin").write_bytes(os.urandom(100_000))
    a.add([tmp_path / "f.bin"])
    files = service.export_bundle(a, [to(b)], tmp_path / "out", part_size=10_000).files
    victim = files[3]
    data = bytearray(victim.read_bytes())
    if fault == "tampered":
        data[100] ^= 0x40
        victim.write_bytes(bytes(data))
    else:
        victim.write_bytes(bytes(data[: len(data) - 700]))
    before = state(b)
    with pytest.raises(AtharError) as err:
        service.import_bundles(b, files)
    assert "incomplete" in str(err.value) and "4" in str(err.value)
    assert state(b) == before
    outcome_damaged = service.parts.sort_parts(files).damaged
    assert victim.name in str(outcome_damaged[0])


def test_tampered_part_is_routed_around_with_redundancy(
    pair: tuple[Vault, Vault], tmp_path: Path
) -> None:
    a, b = pair
    (tmp_path / "f.bin").write_bytes(os.urandom(100_000))
    a.add([tmp_path / "f.bin"])
    files = service.export_bundle(
        a, [to(b)], tmp_path / "out", part_size=10_000, redundancy=0.2
    ).files
    data = bytearray(files[0].read_bytes())
    data[5] ^= 1
    files[0].write_bytes(bytes(data))
    got = service.import_bundles(b, files)
    assert got.imported[0].new_blobs == 1 and got.damaged


def test_part_from_another_bundle_is_not_used(pair: tuple[Vault, Vault], tmp_path: Path) -> None:
    a, b = pair
    (tmp_path / "f.bin").write_bytes(os.urandom(40_000))
    a.add([tmp_path / "f.bin"])
    one = service.export_bundle(a, [to(b)], tmp_path / "one", part_size=10_000).files
    two = service.export_bundle(a, [to(b)], tmp_path / "two", part_size=10_000).files
    # a part of bundle two renamed as a part of bundle one takes nothing from it
    fake = tmp_path / "one" / one[1].name
    shutil.copy(two[1], fake)
    before = state(b)
    with pytest.raises(InputError, match="incomplete"):
        service.import_bundles(b, [tmp_path / "one"])
    assert state(b) == before


def test_bundle_for_someone_else_is_refused(pair: tuple[Vault, Vault], tmp_path: Path) -> None:
    a, b = pair
    c = make(tmp_path, "stranger")
    files = service.export_bundle(a, [to(b)], tmp_path / "out").files
    before = state(c)
    with pytest.raises(InputError, match="not addressed to this device"):
        service.import_bundles(c, files, accept_unknown=True)
    assert state(c) == before


def test_replayed_old_bundle_and_gap(pair: tuple[Vault, Vault], tmp_path: Path) -> None:
    a, b = pair
    with Records(a) as r:
        pid = r.create("person", {"name_ar.full": "فاطمة علي"})
    old = service.export_bundle(a, [to(b)], tmp_path / "old").files
    service.import_bundles(b, old)
    with Records(a) as r:
        r.update(pid, {"name_latin.full": "Fatima Ali"})
    mid = service.export_bundle(a, [to(b)], tmp_path / "mid", since=a.ledger.size() - 1)
    with Records(a) as r:
        r.update(pid, {"sex": "أنثى"})
    late = service.export_bundle(a, [to(b)], tmp_path / "late", since=a.ledger.size() - 1)
    before = state(b)
    with pytest.raises(InputError, match="holds only"):
        service.import_bundles(b, late.files)  # starts past what b holds
    assert state(b) == before
    assert service.import_bundles(b, old).imported[0].nothing_new  # replay
    assert state(b) == before
    # both together, in the wrong order, sort themselves out
    service.import_bundles(b, late.files + mid.files)
    assert record(b, pid) == record(a, pid)


def test_unknown_and_revoked_devices(tmp_path: Path) -> None:
    a, b = make(tmp_path, "office"), make(tmp_path, "field")
    with Records(b) as r:
        r.create("incident", {"title.ar": "قصف السوق"})
    first = service.export_bundle(b, [to(a)], tmp_path / "1").files
    before = state(a)
    with pytest.raises(InputError, match="unknown device"):
        service.import_bundles(a, first)
    assert state(a) == before
    c = service.card(b)
    service.enrol(a, c["key"], c["age_recipient"], "field laptop", admin=False)
    service.import_bundles(a, first)
    dev = service.revoke(a, "field laptop", "laptop seized")
    assert dev.revoked_after == b.ledger.size() - 1 + 0 or dev.revoked_after is not None
    with Records(b) as r:
        r.create("incident", {"title.ar": "حدث مزور"})
    later = service.export_bundle(b, [to(a)], tmp_path / "2", since=0).files
    before = state(a)
    with pytest.raises(InputError, match="revoked"):
        service.import_bundles(a, later)
    with pytest.raises(InputError, match="after it was revoked"):
        service.import_bundles(a, later, accept_unknown=True)
    assert state(a) == before
    listed = {d.name: d.revoked_after for d in service.members(a).devices.values()}
    assert listed["field laptop"] is not None


def test_receipt_proves_and_prunes(pair: tuple[Vault, Vault], tmp_path: Path) -> None:
    a, b = pair
    with Records(a) as r:
        r.create("person", {"name_ar.full": "أحمد"})
    sent = service.export_bundle(a, [to(b)], tmp_path / "1")
    service.import_bundles(b, sent.files)
    text = service.make_receipt(b)
    assert len(text) < 600
    qr = tmp_path / "receipt.png"
    segno.make(text, error="l").save(str(qr), scale=2)
    assert qr.stat().st_size > 0
    lines = text.split("\n")
    forged = "\n".join([lines[0], str(int(lines[1]) + 1), *lines[2:]])
    with pytest.raises(IntegrityError):
        service.ack(a, forged)  # the signature covers the size
    done = service.ack(a, text)
    assert done["size"] == sent.size and done["known_device"]
    again = service.export_bundle(a, [to(b)], tmp_path / "2")
    assert again.since == sent.size  # pruned: only what came after the receipt
    with pytest.raises(InputError, match="another vault"):
        service.ack(b, text)


def test_verify_checks_foreign_files(pair: tuple[Vault, Vault], tmp_path: Path) -> None:
    a, b = pair
    (tmp_path / "صورة.bin").write_bytes(os.urandom(1000))
    a.add([tmp_path / "صورة.bin"])
    service.import_bundles(b, service.export_bundle(a, [to(b)], tmp_path / "out").files)
    report = audit(b)
    assert report.ok and report.blobs_checked == 1
