"""Tampering with a vault on disk: `athar verify` must fail (exit 6) and name the damage.

Each test builds a real vault, damages one thing the way an attacker (or a dying disk)
would, and runs the real CLI. "Insider" tests decrypt with the vault's own keys and
re-seal after editing, so the AEAD seal alone cannot be what catches them: the
signatures, the per-device hash chains and the checkpoints must.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from athar.crypto import aead
from athar.crypto.identity import DeviceIdentity
from athar.crypto.stream import ABYTES, CHUNK_SIZE, HEADER_BYTES
from athar.vault.events import Event, sign_event, utc_now
from athar.vault.items import ITEM_ADDED, Item
from athar.vault.ledger import event_ad
from athar.vault.vault import Vault
from conftest import ARABIC_TEXT, PASSPHRASE

INTEGRITY_EXIT = 6
WRONG_PASSPHRASE_EXIT = 3
# A near miss: the real passphrase with one character changed.
PASSPHRASE_VARIANT = PASSPHRASE[:-1] + PASSPHRASE[-1].upper()

Cli = Callable[..., Any]


# -- helpers ---------------------------------------------------------------------------


@pytest.fixture
def filled(vault: Vault, sample_files: Path, tmp_path: Path) -> dict[str, Item]:
    """The vault with the sample files plus a 2.5 MiB (three-chunk) file, by name.

    Events: #0 vault.created, #1 clip.bin, #2 empty.txt, #3 the Arabic testimony,
    #4 note-en.txt (one transaction), #5 big.bin (a second transaction). clip.bin
    (300 kB) and big.bin are stored as files under blobs/, the others are small enough
    to be stored inside the database.
    """
    vault.add([sample_files])
    big = tmp_path / "more" / "big.bin"
    big.parent.mkdir()
    big.write_bytes(os.urandom(2 * CHUNK_SIZE + CHUNK_SIZE // 2))
    vault.add([big])
    items = {i.name: i for i in vault.items()}
    assert [i.seq for i in sorted(items.values(), key=lambda i: i.seq)] == [1, 2, 3, 4, 5]
    assert items["clip.bin"].seq == 1 and items["empty.txt"].seq == 2
    return items


def _verify(cli: Cli) -> Any:
    result = cli("verify")
    print(result.output)
    return result


def _verify_json(cli: Cli) -> dict[str, Any]:
    result = cli("verify", "--json")
    doc = json.loads(result.stdout)
    assert isinstance(doc["problems"], list)
    assert doc["ok"] is (result.exit_code == 0)
    return doc


def _assert_fails_naming(cli: Cli, *needles: str) -> str:
    """verify exits 6, and every needle appears in its output (and in --json problems)."""
    result = _verify(cli)
    assert result.exit_code == INTEGRITY_EXIT, result.output
    assert "VERIFICATION FAILED" in result.output
    for needle in needles:
        assert needle in result.output, f"{needle!r} not named in:\n{result.output}"
    doc = _verify_json(cli)
    assert doc["ok"] is False
    assert doc["problems"], doc
    problems = "\n".join(f"{p['where']}: {p['what']}" for p in doc["problems"])
    for needle in needles:
        assert needle in problems, f"{needle!r} not in JSON problems:\n{problems}"
    return result.output


def _blob_path(vault: Vault, item: Item) -> Path:
    path = vault.blobs.path(vault.blobs.ref(bytes.fromhex(item.sha256)))
    assert path.is_file()
    return path


@contextmanager
def _raw_db(vault_dir: Path) -> Iterator[sqlite3.Connection]:
    """An outsider's view: the SQLite file, no keys."""
    conn = sqlite3.connect(vault_dir / "ledger.db", isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _sealed(conn: sqlite3.Connection, seq: int) -> bytes:
    row = conn.execute("SELECT sealed FROM events WHERE seq=?", (seq,)).fetchone()
    assert row is not None
    return bytes(row[0])


def _decrypt_entry(vault: Vault, seq: int) -> bytes:
    """An insider's view: the plaintext DSSE envelope stored at *seq*."""
    sealed = _sealed(vault.ledger.conn, seq)
    return aead.open_sealed(vault.ledger._event_key, sealed, event_ad(seq))


def _store_entry(vault: Vault, seq: int, entry: bytes, *, insert: bool = False) -> None:
    """Seal *entry* properly for position *seq* (and give it a matching index tag)."""
    from athar.vault.merkle import leaf_hash

    ledger = vault.ledger
    sealed = aead.seal(ledger._event_key, entry, event_ad(seq))
    tag = ledger.tag(leaf_hash(entry))
    if insert:
        ledger.conn.execute(
            "INSERT INTO events (seq, tag, sealed) VALUES (?, ?, ?)", (seq, tag, sealed)
        )
    else:
        ledger.conn.execute("UPDATE events SET tag=?, sealed=? WHERE seq=?", (tag, sealed, seq))


def _tree_hashes(root: Path) -> dict[str, str]:
    """Every file under *root* and its SHA-256 (directories listed too, as '<dir>')."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "<dir>"
        for f in filenames:
            full = os.path.join(dirpath, f)
            with open(full, "rb") as fh:
                out[os.path.relpath(full, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


# -- the control case ------------------------------------------------------------------


def test_untouched_vault_verifies(cli: Cli, filled: dict[str, Item]) -> None:
    result = _verify(cli)
    assert result.exit_code == 0, result.output
    assert "all checks passed" in result.output
    doc = _verify_json(cli)
    assert doc["ok"] is True
    assert doc["problems"] == []
    assert doc["events"] == 6 and doc["items"] == 5 and doc["blobs_checked"] == 5
    assert doc["tree_size"] == 6 and len(doc["root"]) == 64


# -- blobs stored as files (large items) ----------------------------------------------


def test_blob_with_one_byte_flipped(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    item = filled["clip.bin"]
    path = _blob_path(vault, item)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    out = _assert_fails_naming(cli, f"item {item.short_id}", "failed authentication")
    # Only that item is blamed.
    for other in filled.values():
        if other is not item:
            assert other.short_id not in out


def test_blob_flipped_in_last_chunk_of_multichunk_file(
    cli: Cli, vault: Vault, filled: dict[str, Item]
) -> None:
    item = filled["big.bin"]
    path = _blob_path(vault, item)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x80
    path.write_bytes(bytes(data))
    _assert_fails_naming(cli, f"item {item.short_id}", "chunk 2 failed authentication")


def test_truncated_blob(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    item = filled["clip.bin"]
    path = _blob_path(vault, item)
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    _assert_fails_naming(cli, f"item {item.short_id}")


def test_blob_truncated_at_a_chunk_boundary(
    cli: Cli, vault: Vault, filled: dict[str, Item]
) -> None:
    """Dropping whole trailing chunks must be caught (no FINAL tag), not read as a short file."""
    item = filled["big.bin"]
    path = _blob_path(vault, item)
    boundary = 12 + HEADER_BYTES + 2 * (CHUNK_SIZE + ABYTES)
    assert path.stat().st_size > boundary
    with open(path, "r+b") as fh:
        fh.truncate(boundary)
    _assert_fails_naming(cli, f"item {item.short_id}", "truncated")


def test_deleted_blob(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    item = filled["big.bin"]
    _blob_path(vault, item).unlink()
    _assert_fails_naming(cli, f"item {item.short_id}", "missing")


def test_blob_swapped_with_another(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    """Two whole, valid ciphertexts exchanged: each is read with the other's key."""
    a, b = filled["clip.bin"], filled["big.bin"]
    pa, pb = _blob_path(vault, a), _blob_path(vault, b)
    da, db = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(db)
    pb.write_bytes(da)
    _assert_fails_naming(cli, f"item {a.short_id}", f"item {b.short_id}")


# -- blobs stored in the database (small items) and the blob keys ---------------------


def _ref(vault: Vault, item: Item) -> bytes:
    return vault.blobs.ref(bytes.fromhex(item.sha256))


def _inline(conn: sqlite3.Connection, ref: bytes) -> bytes:
    row = conn.execute("SELECT data FROM small_blobs WHERE ref=?", (ref,)).fetchone()
    assert row is not None, "expected this small item to be stored in the database"
    return bytes(row[0])


def test_small_blob_with_one_byte_flipped(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    item = filled["شهادة-٧.txt"]
    ref = _ref(vault, item)
    with _raw_db(vault.root) as conn:
        data = bytearray(_inline(conn, ref))
        data[len(data) // 2] ^= 0x10
        conn.execute("UPDATE small_blobs SET data=? WHERE ref=?", (bytes(data), ref))
    _assert_fails_naming(cli, f"item {item.short_id}", "failed authentication")


def test_small_blob_truncated(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    item = filled["note-en.txt"]
    ref = _ref(vault, item)
    with _raw_db(vault.root) as conn:
        data = _inline(conn, ref)
        conn.execute("UPDATE small_blobs SET data=? WHERE ref=?", (data[: len(data) // 2], ref))
    _assert_fails_naming(cli, f"item {item.short_id}")


def test_small_blob_deleted(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    item = filled["empty.txt"]
    ref = _ref(vault, item)
    with _raw_db(vault.root) as conn:
        _inline(conn, ref)
        assert conn.execute("DELETE FROM small_blobs WHERE ref=?", (ref,)).rowcount == 1
    _assert_fails_naming(cli, f"item {item.short_id}", "missing")


def test_small_blobs_swapped(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    a, b = filled["شهادة-٧.txt"], filled["note-en.txt"]
    ra, rb = _ref(vault, a), _ref(vault, b)
    with _raw_db(vault.root) as conn:
        da, db = _inline(conn, ra), _inline(conn, rb)
        conn.execute("UPDATE small_blobs SET data=? WHERE ref=?", (db, ra))
        conn.execute("UPDATE small_blobs SET data=? WHERE ref=?", (da, rb))
    _assert_fails_naming(cli, f"item {a.short_id}", f"item {b.short_id}")


def test_blob_key_deleted(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    """Deleting a key by hand is not a crypto-shred: no signed event says so."""
    item = filled["clip.bin"]
    with _raw_db(vault.root) as conn:
        deleted = conn.execute("DELETE FROM blob_keys WHERE ref=?", (_ref(vault, item),))
        assert deleted.rowcount == 1
    _assert_fails_naming(cli, f"item {item.short_id}", "key is missing")


def test_blob_keys_swapped(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    a, b = filled["clip.bin"], filled["شهادة-٧.txt"]
    ra, rb = _ref(vault, a), _ref(vault, b)
    with _raw_db(vault.root) as conn:
        ka, kb = (
            bytes(conn.execute("SELECT sealed FROM blob_keys WHERE ref=?", (r,)).fetchone()[0])
            for r in (ra, rb)
        )
        conn.execute("UPDATE blob_keys SET sealed=? WHERE ref=?", (kb, ra))
        conn.execute("UPDATE blob_keys SET sealed=? WHERE ref=?", (ka, rb))
    _assert_fails_naming(cli, f"item {a.short_id}", f"item {b.short_id}")


# -- events: outsider ------------------------------------------------------------------


def test_event_ciphertext_byte_flipped(cli: Cli, vault_dir: Path, filled: dict[str, Item]) -> None:
    with _raw_db(vault_dir) as conn:
        sealed = bytearray(_sealed(conn, 3))
        sealed[len(sealed) // 2] ^= 0x04
        conn.execute("UPDATE events SET sealed=? WHERE seq=3", (bytes(sealed),))
    out = _assert_fails_naming(cli, "event #3", "cannot be opened")
    # Events before the damaged one are not blamed (later ones may be, as a consequence:
    # the device chain has a hole where #3 was).
    for seq in (0, 1, 2):
        assert f"event #{seq}:" not in out


def test_deleted_event_row(cli: Cli, vault_dir: Path, filled: dict[str, Item]) -> None:
    with _raw_db(vault_dir) as conn:
        assert conn.execute("DELETE FROM events WHERE seq=2").rowcount == 1
    _assert_fails_naming(cli, "event #2", "missing")


def test_last_event_row_deleted_is_a_truncation(
    cli: Cli, vault_dir: Path, filled: dict[str, Item]
) -> None:
    """No gap to see: only the checkpoints can tell that the newest event is gone."""
    with _raw_db(vault_dir) as conn:
        assert conn.execute("DELETE FROM events WHERE seq=5").rowcount == 1
    _assert_fails_naming(cli, "covers 6 events but the ledger holds 5")


def test_swapped_event_rows(cli: Cli, vault_dir: Path, filled: dict[str, Item]) -> None:
    with _raw_db(vault_dir) as conn:
        s2, s3 = _sealed(conn, 2), _sealed(conn, 3)
        conn.execute("UPDATE events SET sealed=? WHERE seq=2", (s3,))
        conn.execute("UPDATE events SET sealed=? WHERE seq=3", (s2,))
    _assert_fails_naming(cli, "event #2", "event #3", "cannot be opened")


# -- events: insider (holds the passphrase, re-seals after editing) --------------------


def test_insider_edits_the_signed_file_name(
    cli: Cli, vault: Vault, filled: dict[str, Item]
) -> None:
    seq = filled["شهادة-٧.txt"].seq
    envelope = json.loads(_decrypt_entry(vault, seq))
    payload = json.loads(base64.b64decode(envelope["payload"]))
    assert payload["body"]["name"] == "شهادة-٧.txt"
    payload["body"]["name"] = "شهادة-٨.txt"  # a different testimony, same signature
    envelope["payload"] = base64.b64encode(rfc8785.dumps(payload)).decode()
    _store_entry(vault, seq, bytes(rfc8785.dumps(envelope)))
    # The edit is really there: the CLI lists the forged name...
    listed = cli("ls", "--json")
    assert "شهادة-٨.txt" in {i["name"] for i in json.loads(listed.stdout)}
    # ...and verify refuses it.
    out = _assert_fails_naming(cli, f"event #{seq}", "signature does not verify")
    assert "Merkle root does not match" in out


def test_insider_swaps_two_events(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    """Each event re-sealed validly at the other's position: signatures still verify."""
    e2, e3 = _decrypt_entry(vault, 2), _decrypt_entry(vault, 3)
    conn = vault.ledger.conn
    conn.execute("BEGIN")
    conn.execute("UPDATE events SET tag=randomblob(16) WHERE seq IN (2, 3)")
    _store_entry(vault, 2, e3)
    _store_entry(vault, 3, e2)
    conn.execute("COMMIT")
    out = _assert_fails_naming(cli, "event #2", "device chain broken")
    assert "event #3" in out
    assert "Merkle root does not match" in out
    assert "signature does not verify" not in out


def test_forged_event_from_unknown_device(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    stranger = DeviceIdentity.generate()
    body = {
        "sha256": hashlib.sha256(b"planted").hexdigest(),
        "size": 7,
        "name": "planted-evidence.txt",
        "media_type": "text/plain",
    }
    event = Event(ITEM_ADDED, stranger.public_key, 0, None, utc_now(), body)
    signed = sign_event(event, stranger)
    assert signed.signature_valid()
    next_seq = vault.ledger.conn.execute("SELECT max(seq) + 1 FROM events").fetchone()[0]
    assert next_seq == 6
    _store_entry(vault, next_seq, signed.entry, insert=True)
    _assert_fails_naming(cli, "event #6", "unknown device")


def test_event_appended_with_the_real_key_but_no_checkpoint(
    cli: Cli, vault: Vault, filled: dict[str, Item]
) -> None:
    """An insider with the device key appends outside Athar: no checkpoint covers it."""
    ledger = vault.ledger
    head = ledger.head()
    device = base64.b64encode(vault.keys.identity.public_key).decode()
    dseq, prev = head.devices[device]
    event = Event(
        "note", vault.keys.identity.public_key, dseq + 1, prev, utc_now(), {"text": ARABIC_TEXT}
    )
    signed = sign_event(event, vault.keys.identity)
    _store_entry(vault, head.size, signed.entry, insert=True)
    _assert_fails_naming(cli, "events #6..#6 are not covered by any checkpoint")


# -- rollback --------------------------------------------------------------------------


def _add_folder(cli: Cli, folder: Path, count: int, tag: str) -> None:
    folder.mkdir()
    for i in range(count):
        (folder / f"{tag}-{i}.txt").write_text(f"{ARABIC_TEXT}{tag} {i}\n", encoding="utf-8")
    result = cli("add", str(folder))
    assert result.exit_code == 0, result.output


def test_restored_older_ledger_is_a_rollback(
    cli: Cli, vault: Vault, vault_dir: Path, tmp_path: Path
) -> None:
    vault.close()
    _add_folder(cli, tmp_path / "first", 3, "أول")
    saved = tmp_path / "saved-ledger"
    saved.mkdir()
    names = ["ledger.db", "ledger.db-wal", "ledger.db-shm"]
    for name in names:
        if (vault_dir / name).exists():
            shutil.copy2(vault_dir / name, saved / name)
    assert _verify(cli).exit_code == 0
    _add_folder(cli, tmp_path / "second", 4, "ثان")
    # Restore the old database (and its WAL, if any; drop the newer WAL).
    for name in names:
        (vault_dir / name).unlink(missing_ok=True)
        if (saved / name).exists():
            shutil.copy2(saved / name, vault_dir / name)
    listed = json.loads(cli("ls", "--json").stdout)
    assert len(listed) == 3  # the rollback "worked": the newer items are gone
    out = _assert_fails_naming(
        cli, "rolled back", "checkpoint covers 8 events but the ledger holds 4"
    )
    assert "checkpoints file" in out


# -- wrong passphrase ------------------------------------------------------------------


def test_wrong_passphrase_changes_nothing(
    cli: Cli,
    vault: Vault,
    vault_dir: Path,
    filled: dict[str, Item],
    sample_files: Path,
    tmp_path: Path,
) -> None:
    vault.close()
    assert PASSPHRASE_VARIANT != PASSPHRASE
    item = filled["clip.bin"]
    before = _tree_hashes(vault_dir)
    assert "ledger.db" in before and "key" in before and "checkpoints" in before
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    commands = [
        ["ls"],
        ["log"],
        ["verify"],
        ["verify", "--json"],
        ["add", str(sample_files)],
        ["add", str(sample_files), "--json"],
        ["show", item.id],
        ["get", item.id, "-o", str(outputs / "out.bin")],
        ["checkpoint", "-o", str(outputs / "cp.json")],
        ["prove", item.id, "-o", str(outputs / "proof.json")],
    ]
    for wrong in ("not the passphrase", PASSPHRASE_VARIANT, " "):
        for args in commands:
            result = cli(*args, env={"ATHAR_PASSPHRASE": wrong})
            assert result.exit_code == WRONG_PASSPHRASE_EXIT, (args, result.output)
            assert "wrong passphrase" in result.output.lower(), (args, result.output)
            assert "Traceback" not in result.output
            if "--json" in args:
                doc = json.loads(result.stdout)
                assert doc["ok"] is False and doc["kind"] == "WrongPassphrase"
    assert list(outputs.iterdir()) == []
    assert _tree_hashes(vault_dir) == before
    # And the right passphrase still opens an intact vault.
    assert _verify(cli).exit_code == 0
    assert len(json.loads(cli("ls", "--json").stdout)) == 5


def test_insider_rewrites_the_sealed_head(cli: Cli, vault: Vault, filled: dict[str, Item]) -> None:
    """The head (size, frontier, chain heads) that appenders trust is recomputed by verify:
    an insider who reseals a head claiming fewer events is caught."""
    from athar.vault.ledger import Head

    head = vault.ledger.head()
    shorter = Head()
    for seq in range(head.size - 1):
        shorter.advance(vault.ledger.event_at(seq))
    sealed = aead.seal(vault.ledger._meta_key, shorter.to_bytes(), b"head")
    vault.ledger.conn.execute("UPDATE meta SET v=? WHERE k='head'", (sealed,))
    _assert_fails_naming(cli, "ledger head")
