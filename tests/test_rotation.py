"""Key rotation (issue 10): a device gets new keys, its old key signs its own retirement;
what the old key signed before stays verifiable everywhere, what it signs after is
refused wherever the rotation is known; an admin's authority follows its new key; a
thief holding a revoked key cannot rotate; crashes mid-rotation lose no key."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from athar.crypto.identity import DeviceIdentity, fingerprint
from athar.errors import AtharError, InputError, IntegrityError
from athar.records.service import Records
from athar.sync import membership, service
from athar.vault import keyfile, recovery, rotation
from athar.vault.audit import audit
from athar.vault.events import IMPORTED_KIND, Event, sign_event, utc_now
from athar.vault.proofs import check_proof
from athar.vault.vault import Vault
from conftest import ARABIC_TEXT, PASSPHRASE


def make(root: Path, name: str) -> Vault:
    return Vault.create(root / name, PASSPHRASE)


def befriend(admin: bool, *vaults: Vault) -> None:
    for v in vaults:
        for other in vaults:
            if other is not v:
                c = service.card(other)
                service.enrol(v, c["key"], c["age_recipient"], other.root.name, admin=admin)


def send(src: Vault, dst: Vault, out: Path, since: int | None = 0, **kw: bool) -> object:
    files = service.export_bundle(src, [service.card(dst)["age_recipient"]], out, since=since).files
    return service.import_bundles(dst, files, **kw)


def state(v: Vault) -> tuple[int, int]:
    return v.ledger.size(), sum(1 for p in (v.root / "blobs").rglob("*") if p.is_file())


def forged_event(identity: DeviceIdentity, dseq: int, prev: str | None) -> bytes:
    """An event a thief signs with a copied key (here: a record with an Arabic title)."""
    body = {"type": "incident", "record": "0" * 26, "fields": {"title.ar": "حدث مزور"}}
    ev = Event("record.created", identity.public_key, dseq, prev, utc_now(), body)
    return sign_event(ev, identity).entry


def carry(relay: Vault, entry: bytes, origin: str) -> None:
    """A relay that holds *entry* (as if a bundle had brought it there earlier)."""
    with relay.ledger.transaction() as tx:
        tx.append(IMPORTED_KIND, {"entry": entry.decode(), "from": origin})


def test_rotation_keeps_old_evidence_verifiable_and_signs_with_the_new_key(
    tmp_path: Path,
) -> None:
    src = tmp_path / "شهادة.txt"
    src.write_text(ARABIC_TEXT, encoding="utf-8")
    v = make(tmp_path, "field")
    (item,) = [r.item for r in v.add([src]).results if r.item]
    proof_before = v.prove(item)
    old = v.keys.identity
    link = rotation.rotate(v)
    assert link.old == old.public_key and link.new == v.keys.identity.public_key != link.old
    with Records(v) as r:
        r.create("person", {"name_ar.full": "محمد الحلبي"})
    kinds = [(e.event.kind, e.event.device) for e in v.events()]
    assert (rotation.ROTATED, old.public_key) in kinds
    assert kinds[-1][1] == link.new  # what is written now is signed by the new key
    assert all(
        dev == old.public_key
        for _, dev in kinds[: kinds.index((rotation.ROTATED, old.public_key)) + 1]
    )
    report = audit(v)
    assert report.ok, report.problems
    # The proof made before, and a new one of the same item under a checkpoint signed by
    # the new key, both check without the vault.
    assert check_proof(proof_before, file=src).ok
    after = check_proof(v.prove(item), file=src)
    assert after.ok and after.event_signer == fingerprint(old.public_key)
    assert after.checkpoint_signer == fingerprint(link.new)
    v.close()
    with Vault.open(tmp_path / "field", PASSPHRASE) as again:
        assert again.keys.identity.public_key == link.new
        assert audit(again).ok
        assert keyfile.PENDING not in keyfile.load(again.root / "key")


def test_an_event_by_a_former_key_after_its_rotation_fails_verify(tmp_path: Path) -> None:
    v = make(tmp_path, "field")
    old = v.keys.identity
    rotation.rotate(v)
    # An insider with the copied old key (and the master key, to lift the ledger's own
    # guard against the old key) appends in its name after the rotation.
    v.ledger.conn.execute("DELETE FROM meta WHERE k='retired'")
    v.ledger.keys = keyfile.UnlockedKeys(v.keys.master, old, v.keys.vault_id)
    with v.ledger.transaction() as tx:
        tx.append("record.created", {"type": "incident", "record": "1" * 26, "fields": {}})
    v.ledger.keys = v.keys
    report = audit(v)
    assert not report.ok
    assert any("after it was rotated" in p.what for p in report.problems)


def test_a_process_that_opened_the_vault_before_a_rotation_stops_signing(
    tmp_path: Path,
) -> None:
    """A web server keeps the vault open while an admin rotates from the command line:
    the server must not go on signing with the retired key."""
    cli_side = make(tmp_path, "shared")
    server_side = Vault.open(tmp_path / "shared", PASSPHRASE)
    rotation.rotate(cli_side)
    size = server_side.ledger.size()
    with pytest.raises(AtharError, match="rotated by another command"), Records(server_side) as r:
        r.create("incident", {"title.ar": "قصف"})
    assert server_side.ledger.size() == size
    server_side.close()
    with Vault.open(tmp_path / "shared", PASSPHRASE) as again, Records(again) as r:
        r.create("incident", {"title.ar": "قصف"})  # reopened: signs with the new key
        assert again.events()[-1].event.device == cli_side.keys.identity.public_key
        assert audit(again).ok
    cli_side.close()


def test_interrupted_rotation_is_settled_when_the_vault_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Crash after the ledger committed, before the key file dropped the old identity.
    v = make(tmp_path, "a")
    old = v.keys.identity.public_key

    def crash(*_: object) -> None:
        raise OSError("power lost")

    with monkeypatch.context() as m:
        m.setattr(keyfile, "commit_identity", crash)
        with pytest.raises(OSError):
            rotation.rotate(v)
    v.close()
    with Vault.open(tmp_path / "a", PASSPHRASE) as again:
        new = again.keys.identity.public_key
        assert new != old and again.events()[-1].event.device == new
        assert audit(again).ok
        assert keyfile.PENDING not in keyfile.load(again.root / "key")
    # Crash before the ledger committed: the old identity stays, the pending one goes.
    w = make(tmp_path, "b")
    old, size = w.keys.identity.public_key, w.ledger.size()
    with monkeypatch.context() as m:
        m.setattr(rotation, "body_for", crash)
        m.setattr(keyfile, "drop_pending", lambda _path: None)
        with pytest.raises(OSError):
            rotation.rotate(w)
    assert keyfile.PENDING in keyfile.load(w.root / "key")
    w.close()
    with Vault.open(tmp_path / "b", PASSPHRASE) as again:
        assert again.keys.identity.public_key == old and again.ledger.size() == size
        assert keyfile.PENDING not in keyfile.load(again.root / "key")
        assert audit(again).ok


def test_other_vaults_take_the_new_key_as_the_same_device(tmp_path: Path) -> None:
    office, field = make(tmp_path, "office"), make(tmp_path, "field")
    befriend(True, office, field)  # each an admin in the other's eyes
    with Records(field) as r:
        rid = r.create("incident", {"title.ar": "قصف السوق"})
    send(field, office, tmp_path / "1", since=None)
    held = office.ledger.size()
    old = field.keys.identity.public_key
    link = rotation.rotate(field)
    with Records(field) as r:
        r.update(rid, {"title.ar": "قصف السوق المركزي"})
    # Incremental: the rotation and the new key's events in a bundle whose checkpoint
    # the new key signed, after a first one that the old key signed.
    send(field, office, tmp_path / "2", since=None)
    assert office.ledger.size() > held
    m = service.members(office)
    new_dev, old_dev = m.devices[link.new], m.devices[old]
    assert (new_dev.name, new_dev.admin, new_dev.retired) == ("field", True, False)
    assert old_dev.retired and old_dev.rotated_to == link.new and old_dev.revoked_after is None
    assert m.find("field").key == link.new  # by name: the current key
    with Records(office) as r:
        assert r.get(rid).to_json()["fields"]["title.ar"] == "قصف السوق المركزي"
    # The office now encrypts to the new key, which the field device opens.
    with Records(office) as r:
        r.create("source", {"type": "witness", "name": "شاهد"})
    files = service.export_bundle(office, ["field"], tmp_path / "3").files
    assert service.import_bundles(field, files).imported[0].new_events > 0
    # The admin's authority follows its new key: a device it enrols after the rotation
    # is trusted by the office.
    newcomer = make(tmp_path, "newcomer")
    c = service.card(newcomer)
    service.enrol(field, c["key"], c["age_recipient"], "جهاز جديد", admin=False)
    send(field, office, tmp_path / "4", since=None)
    with Records(newcomer) as r:
        r.create("incident", {"title.ar": "نزوح"})
    send(newcomer, office, tmp_path / "5")  # refused as unknown unless the enrolment counted
    for v in (office, field):
        assert audit(v).ok


def test_a_bundle_from_before_the_rotation_still_imports_after_it(tmp_path: Path) -> None:
    office, field = make(tmp_path, "office"), make(tmp_path, "field")
    befriend(False, office, field)
    with Records(field) as r:
        r.create("incident", {"title.ar": "قصف"})
    early = service.export_bundle(field, [service.card(office)["age_recipient"]], tmp_path / "1")
    rotation.rotate(field)
    late = service.export_bundle(
        field, [service.card(office)["age_recipient"]], tmp_path / "2", since=early.size
    )
    with pytest.raises(InputError, match="holds only"):
        service.import_bundles(office, late.files)
    service.import_bundles(office, early.files)  # signed by the old key, all before
    service.import_bundles(office, late.files)
    assert audit(office).ok


def test_old_key_refused_after_rotation_wherever_it_arrives(tmp_path: Path) -> None:
    office, field, relay = (make(tmp_path, n) for n in ("office", "field", "relay"))
    befriend(True, office, field, relay)
    send(field, office, tmp_path / "0")
    old = field.keys.identity
    rotation.rotate(field)
    rotated_entry = next(e for e in field.events() if e.event.kind == rotation.ROTATED).entry
    after = json.loads(base64.b64decode(json.loads(rotated_entry)["payload"]))["dseq"]
    origin = field.ledger.origin
    forged = forged_event(old, after + 1, None)
    # 1. The office knows the rotation; the relay carries a forgery the thief gave it.
    send(field, office, tmp_path / "1")
    carry(relay, forged, origin)
    before = state(office)
    with pytest.raises(InputError, match="after it was revoked"):
        send(relay, office, tmp_path / "2")
    assert state(office) == before
    # 2. Order inside one bundle does not matter: a forgery placed before the rotation
    # that retires its key is refused too, by a vault that learns of both at once.
    other = make(tmp_path, "other")
    befriend(True, other, relay)
    c = service.card(field)
    service.enrol(
        other, base64.b64encode(old.public_key).decode(), c["age_recipient"], "field", True
    )
    relay2 = make(tmp_path, "relay2")
    befriend(True, other, relay2)
    carry(relay2, forged, origin)
    carry(relay2, rotated_entry, origin)
    before = state(other)
    with pytest.raises(InputError, match="after it was revoked"):
        send(relay2, other, tmp_path / "3")
    assert state(other) == before


def test_a_thief_with_a_revoked_key_cannot_rotate(tmp_path: Path) -> None:
    office, field = make(tmp_path, "office"), make(tmp_path, "field")
    befriend(True, office, field)
    with Records(field) as r:
        r.create("incident", {"title.ar": "اعتقال"})
    send(field, office, tmp_path / "0")
    stolen = tmp_path / "stolen"
    shutil.copytree(field.root, stolen)  # the laptop is taken; its passphrase is forced
    service.revoke(office, "field", "laptop seized at a checkpoint")
    with Vault.open(stolen, PASSPHRASE) as thief:
        link = rotation.rotate(thief)  # the thief tries to launder the key
        with Records(thief) as r:
            r.create("incident", {"title.ar": "رواية مزورة"})
        before = state(office)
        with pytest.raises(InputError):
            send(thief, office, tmp_path / "1")
        with pytest.raises(InputError, match="after it was revoked"):
            send(thief, office, tmp_path / "2", accept_unknown=True)
        assert state(office) == before
    assert not service.members(office).known(link.new)


def test_two_rotations_of_one_key_are_a_fork_and_neither_is_honoured() -> None:
    old, genuine, thief = (DeviceIdentity.generate() for _ in range(3))
    admin = DeviceIdentity.generate()
    enrol = {
        "device": base64.b64encode(old.public_key).decode(),
        "encryption_key": base64.b64encode(old.encryption_public_key).decode(),
        "name": "حاسوب الميدان",
        "admin": True,
    }
    a = (rotation.ROTATED, old.public_key, 4, rotation.body_for(old, genuine, 4))
    b = (rotation.ROTATED, old.public_key, 4, rotation.body_for(old, thief, 4))
    # A rotation "to" a key the rotator does not hold is not honoured either.
    stolen = dict(rotation.body_for(old, thief, 4))
    stolen["new"] = base64.b64encode(admin.public_key).decode()
    c = (rotation.ROTATED, old.public_key, 4, stolen)
    for order in ([a, b], [b, a], [c, a, b]):
        m = membership.build(
            admin.public_key, [(membership.ENROLLED, admin.public_key, 0, enrol), *order]
        )
        assert not m.known(genuine.public_key) and not m.known(thief.public_key)
        assert m.allows(old.public_key, 4) and not m.allows(old.public_key, 5)
        assert m.devices[old.public_key].retired
    for order in ([c, a], [a, c]):
        m = membership.build(
            admin.public_key, [(membership.ENROLLED, admin.public_key, 0, enrol), *order]
        )
        assert m.devices[genuine.public_key].name == "حاسوب الميدان"
        assert m.devices[genuine.public_key].admin
        assert not m.is_admin(old.public_key)


def test_rotation_message_in_bundle_with_bad_body_changes_nothing() -> None:
    old, new = DeviceIdentity.generate(), DeviceIdentity.generate()
    good = rotation.body_for(old, new, 2)
    bad_bodies = [
        {**good, "after_dseq": 3},  # not the event's own number
        {**good, "after_dseq": True},
        {**good, "new_signature": base64.b64encode(b"x" * 64).decode()},
        {**good, "new": "not base64!"},
        {k: v for k, v in good.items() if k != "new_encryption_key"},
    ]
    for body in bad_bodies:
        assert rotation.parse(old.public_key, 2, body) is None
    assert rotation.parse(new.public_key, 2, good) is None  # signed by the wrong key
    assert rotation.parse(old.public_key, 2, good) is not None


def test_recovery_shares_survive_a_rotation_and_a_new_split_retires_them(tmp_path: Path) -> None:
    v = make(tmp_path, "vault")
    made = recovery.split(v.root / "key", v.keys, 2, 3)
    rotation.rotate(v)
    new_key = v.keys.identity.public_key
    v.close()
    shares = recovery.parse([(f"share {r.share.index}", r.text) for r in made[:2]])
    keys = recovery.unlock(tmp_path / "vault" / "key", shares)
    assert keys.identity.public_key == new_key  # the recovered vault signs with the new key

    # Rotating the recovery key: a new split. If printing the new shares fails, nothing
    # changes and the old shares still work.
    def no_paper(_: object) -> None:
        raise InputError("cannot write {path}: disk full", path="shares")

    with Vault.open(tmp_path / "vault", PASSPHRASE) as again:
        before = (again.root / "key").read_bytes()
        with pytest.raises(InputError, match="disk full"):
            recovery.split(again.root / "key", again.keys, 2, 3, no_paper)
        assert (again.root / "key").read_bytes() == before
        assert recovery.unlock(again.root / "key", shares).identity.public_key == new_key
        fresh = recovery.split(again.root / "key", again.keys, 2, 3)
    # Then the old shares stop working, and the refusal leaves the key file as it was.
    before = (tmp_path / "vault" / "key").read_bytes()
    with pytest.raises(InputError, match="older"):
        recovery.unlock(tmp_path / "vault" / "key", shares)
    assert (tmp_path / "vault" / "key").read_bytes() == before
    again_shares = recovery.parse([(f"share {r.share.index}", r.text) for r in fresh[1:]])
    assert recovery.unlock(tmp_path / "vault" / "key", again_shares).identity.public_key == new_key


def test_cli_device_rotate_and_list(cli, tmp_path: Path) -> None:
    assert cli("init").exit_code == 0
    before = json.loads(cli("device", "id", "--json").output)["fingerprint"]
    r = cli("device", "rotate", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["old"] == before and data["fingerprint"] != before
    assert json.loads(cli("device", "id", "--json").output)["fingerprint"] == data["fingerprint"]
    r = cli("device", "rotate")
    assert r.exit_code == 0 and "retired" in r.output
    assert cli("verify").exit_code == 0
    # A wiped vault cannot be rotated; the error is clear and nothing is written.
    assert cli("wipe", "--yes").exit_code == 0
    r = cli("device", "rotate", "--json")
    assert r.exit_code != 0 and "wiped" in r.output


NAMES = ["محمد الحلبي", "مُحَمَّد", "فاطمة علي", "Muhammad al-Halabi"]
edit_op = st.tuples(st.just("edit"), st.integers(0, 2), st.sampled_from(NAMES))
send_op = st.tuples(
    st.just("send"), st.integers(0, 2), st.integers(0, 2), st.sampled_from(["deliver", "lose"])
)
PAIRS = [(s, d) for s in range(3) for d in range(3) if s != d]


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    ops=st.lists(st.one_of(edit_op, send_op), min_size=2, max_size=7),
    rotate_at=st.lists(st.integers(0, 7), min_size=1, max_size=2),
    final=st.permutations(PAIRS),
)
def test_rotation_holds_whatever_the_order_of_delivery(
    ops: list[tuple[Any, ...]], rotate_at: list[int], final: list[tuple[int, int]]
) -> None:
    """The field device rotates once or twice at random moments while three devices edit
    and exchange bundles in random order (some lost, some carried by the relay): once
    everything is delivered, all hold the same records, all take the field device's
    current key as the same admin device, and a forgery signed by a former key after its
    rotation is refused by every one of them."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vs = [make(root, n) for n in ("field", "office", "relay")]
        try:
            befriend(True, *vs)
            with Records(vs[0]) as r:
                rid = r.create("person", {"name_ar.full": NAMES[0]})
            for dst in vs[1:]:
                send(vs[0], dst, root / f"init-{dst.root.name}")
            formers: list[tuple[DeviceIdentity, int]] = []
            schedule: list[tuple[Any, ...]] = list(ops)
            for at in sorted(rotate_at, reverse=True):
                schedule.insert(min(at, len(schedule)), ("rotate",))
            for n, op in enumerate(schedule):
                if op[0] == "rotate":
                    old = vs[0].keys.identity
                    formers.append((old, rotation.rotate(vs[0]).after))
                elif op[0] == "edit":
                    with Records(vs[op[1]]) as r:
                        r.update(rid, {"name_ar.full": op[2]})
                elif op[1] != op[2] and op[3] == "deliver":
                    send(vs[op[1]], vs[op[2]], root / f"b{n}")
            for rnd in range(2):
                for src, dst in final:
                    send(vs[src], vs[dst], root / f"f{rnd}-{src}-{dst}")
            with Records(vs[0]) as r:
                first = r.get(rid).to_json()["fields"]
            current = vs[0].keys.identity.public_key
            for v in vs[1:]:
                with Records(v) as r:
                    assert r.get(rid).to_json()["fields"] == first
                m = service.members(v)
                dev = m.devices[current]
                assert (dev.name, dev.admin, dev.retired) == ("field", True, False)
                for old, _ in formers:
                    assert m.devices[old.public_key].retired
            # A thief's forgery with the first former key, after its rotation, carried by
            # a device everyone trusts: refused everywhere, nothing committed.
            old, after = formers[0]
            carrier = make(root, "carrier")
            for v in vs:
                c = service.card(carrier)
                service.enrol(v, c["key"], c["age_recipient"], "carrier", admin=False)
            carry(carrier, forged_event(old, after + 1, None), vs[0].ledger.origin)
            for v in vs[1:]:
                before = state(v)
                with pytest.raises(InputError, match="after it was revoked"):
                    send(carrier, v, root / f"forged-{v.root.name}")
                assert state(v) == before
            with pytest.raises(IntegrityError, match="signed by this device"):
                send(carrier, vs[0], root / "forged-field")
            carrier.close()
            for v in vs:
                assert audit(v).ok, audit(v).problems
        finally:
            for v in vs:
                v.close()
