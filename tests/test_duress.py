"""Duress and auto-wipe (issue 10): the duress passphrase opens a decoy that looks like any
vault and silently destroys the real keys; the two paths do the same work in the same
order; N failed unlocks in a row destroy the keys; every refusal leaves the vault as it was."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import pytest

from athar.errors import InputError, VaultLocked, WrongPassphrase
from athar.vault import duress, keyfile, recovery
from athar.vault.vault import Vault, clear_decoy, set_decoy, wipe
from conftest import ARABIC_TEXT, PASSPHRASE

DURESS = "وصفة الكبة الحلبية"  # the passphrase given at the checkpoint
SECRET_NAME = "شهادة-أبو-خالد.txt"


@pytest.fixture
def guarded(tmp_path: Path) -> Path:
    """A vault with one secret testimony and a decoy holding a cooking recipe."""
    root = tmp_path / "vault"
    evidence = tmp_path / SECRET_NAME
    evidence.write_text(ARABIC_TEXT, encoding="utf-8")
    recipe = tmp_path / "وصفة.txt"
    recipe.write_text("برغل، لحمة، بصل، صنوبر\n", encoding="utf-8")
    with Vault.create(root, PASSPHRASE) as vault:
        vault.add([evidence])
        recovery.split(root / "key", vault.keys, 2, 3)
        report = set_decoy(vault, DURESS, [recipe])
    assert report.count("added") == 1
    return root


def _names(root: Path, passphrase: str) -> list[str]:
    with Vault.open(root, passphrase) as vault:
        return [i.name for i in vault.items()]


def test_real_passphrase_opens_the_real_vault_and_changes_nothing(guarded: Path) -> None:
    before = json.loads((guarded / "key").read_bytes())
    assert _names(guarded, PASSPHRASE) == [SECRET_NAME]
    assert _names(guarded, PASSPHRASE) == [SECRET_NAME]
    assert json.loads((guarded / "key").read_bytes()) == before


def test_duress_passphrase_opens_the_decoy_and_destroys_the_real_keys(guarded: Path) -> None:
    before_bytes = (guarded / "key").read_bytes()
    before = json.loads(before_bytes)
    assert _names(guarded, DURESS) == ["وصفة.txt"]
    after_bytes = (guarded / "key").read_bytes()
    after = json.loads(after_bytes)
    # Same shape and length, the same KDF salt; every sealed value replaced.
    assert len(after_bytes) == len(before_bytes) and after.keys() == before.keys()
    assert after["kdf"] == before["kdf"]
    for field in ("master", "identity", "recovery"):
        assert after[field] != before[field] and len(after[field]) == len(before[field])
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        Vault.open(guarded, PASSPHRASE)
    # The paper shares cannot bring it back either: the recovery slot is gone too.
    # (They were made before the decoy; rejoining them now fails.)
    # And the duress passphrase keeps opening the decoy, quietly.
    assert _names(guarded, DURESS) == ["وصفة.txt"]


def test_recovery_shares_die_with_the_keys(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    with Vault.create(root, PASSPHRASE) as vault:
        made = recovery.split(root / "key", vault.keys, 2, 2)
        set_decoy(vault, DURESS)
    Vault.open(root, DURESS).close()
    given = recovery.parse([(str(i), s.text) for i, s in enumerate(made)])
    with pytest.raises(InputError, match="do not open this vault"):
        recovery.unlock(root / "key", given)


def test_both_paths_stretch_both_key_files_in_the_same_order(guarded, monkeypatch) -> None:
    calls: list[bytes] = []
    real_stretch = keyfile.stretch

    def counting(passphrase, params):
        calls.append(params.salt)
        return real_stretch(passphrase, params)

    monkeypatch.setattr(keyfile, "stretch", counting)
    salts = [
        bytes.fromhex(json.loads(p.read_bytes())["kdf"]["salt"])
        for p in (guarded / "key", guarded / "spare" / "key")
    ]
    for passphrase in (PASSPHRASE, "كلمة خاطئة", DURESS):
        calls.clear()
        with contextlib.suppress(WrongPassphrase):
            Vault.open(guarded, passphrase).close()
        assert calls == salts, passphrase


def test_the_cli_shows_the_decoy_as_an_ordinary_vault(cli, tmp_path, vault_dir) -> None:
    recipe = tmp_path / "وصفة.txt"
    recipe.write_text("برغل\n", encoding="utf-8")
    assert cli("init").exit_code == 0
    r = cli("duress", "set", "--decoy-files", str(recipe), env={"ATHAR_DURESS_PASSPHRASE": DURESS})
    assert r.exit_code == 0, r.output
    real = cli("ls", "--json")
    forced = cli("ls", "--json", env={"ATHAR_PASSPHRASE": DURESS})
    assert real.exit_code == forced.exit_code == 0
    assert json.loads(real.output) == []
    assert [i["name"] for i in json.loads(forced.output)] == ["وصفة.txt"]
    for command in (("log",), ("verify",)):
        out = cli(*command, env={"ATHAR_PASSPHRASE": DURESS}).output
        assert not re.search(r"spare|decoy|duress|wrong", out, re.IGNORECASE), out
    r = cli("ls")
    assert r.exit_code == WrongPassphrase.exit_code and "wrong passphrase" in r.output


def test_a_duress_passphrase_must_differ_and_only_one_decoy(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    with Vault.create(root, PASSPHRASE) as vault:
        with pytest.raises(InputError, match="must differ"):
            set_decoy(vault, PASSPHRASE)
        with pytest.raises(InputError, match="must not be empty"):
            set_decoy(vault, "")
        assert not (root / "spare").exists()
        with pytest.raises(InputError, match="no such file"):
            set_decoy(vault, DURESS, [tmp_path / "missing.txt"])
        assert not (root / "spare").exists()  # a failed set leaves no half-made decoy
        set_decoy(vault, DURESS)
        with pytest.raises(InputError, match="already set"):
            set_decoy(vault, "عبارة أخرى")
        assert clear_decoy(vault) and not clear_decoy(vault)
    with pytest.raises(WrongPassphrase):
        Vault.open(root, DURESS)
    Vault.open(root, PASSPHRASE).close()


def test_autowipe_after_n_failures_in_a_row(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    Vault.create(root, PASSPHRASE).close()
    for bad in (1, 2, -1, 1001):
        with pytest.raises(InputError, match="at least 3"):
            duress.set_autowipe(root, bad)
    duress.set_autowipe(root, 3)
    assert duress.autowipe_limit(root) == 3
    for _ in range(2):
        with pytest.raises(WrongPassphrase):
            Vault.open(root, "خطأ")
    Vault.open(root, PASSPHRASE).close()  # a success forgives the two failures
    assert json.loads((root / "key").read_bytes())["guard"] == {"limit": 3, "failed": 0}
    sealed = json.loads((root / "key").read_bytes())["master"]
    for _ in range(3):
        with pytest.raises(WrongPassphrase):
            Vault.open(root, "خطأ")
    assert json.loads((root / "key").read_bytes())["master"] != sealed
    with pytest.raises(WrongPassphrase):
        Vault.open(root, PASSPHRASE)  # too late: the keys are gone


def test_autowipe_counts_an_attempt_before_trying_it(tmp_path, monkeypatch) -> None:
    root = tmp_path / "vault"
    Vault.create(root, PASSPHRASE).close()
    duress.set_autowipe(root, 5)

    def killed(*_: object) -> bytes:
        raise KeyboardInterrupt  # the guesser kills the process mid-Argon2id

    monkeypatch.setattr(keyfile, "stretch", killed)
    with pytest.raises(KeyboardInterrupt):
        Vault.open(root, "تخمين")
    assert json.loads((root / "key").read_bytes())["guard"]["failed"] == 1
    monkeypatch.undo()
    duress.set_autowipe(root, 0)
    assert "guard" not in json.loads((root / "key").read_bytes())


def test_autowipe_from_the_cli_and_a_damaged_guard(cli, vault_dir) -> None:
    assert cli("init").exit_code == 0
    assert cli("autowipe", "set", "2").exit_code == 2
    assert cli("autowipe", "set", "4", "--json").exit_code == 0
    doc = json.loads((vault_dir / "key").read_bytes())
    doc["guard"]["failed"] = "كثير"
    (vault_dir / "key").write_text(json.dumps(doc), encoding="utf-8")
    r = cli("ls")
    assert r.exit_code == VaultLocked.exit_code and "unreadable" in r.output


def test_panic_wipe_still_works_with_a_decoy(guarded: Path) -> None:
    wipe(guarded)
    with pytest.raises(VaultLocked):
        Vault.open(guarded, PASSPHRASE)


def test_a_damaged_decoy_does_not_lock_the_owner_out(guarded: Path) -> None:
    (guarded / "spare" / "key").write_bytes(b"\x00" * 300)
    assert _names(guarded, PASSPHRASE) == [SECRET_NAME]
    with pytest.raises(WrongPassphrase):
        Vault.open(guarded, DURESS)
