"""Key recovery (issue 10): a vault's key split k-of-n on paper, rejoined offline; every
bad set of shares refused with a clear error and the key file left exactly as it was."""

from __future__ import annotations

import itertools
import json
import os
import stat
from pathlib import Path

import pytest

from athar.crypto import shares
from athar.errors import InputError, WrongPassphrase
from athar.vault import keyfile, recovery
from athar.vault.vault import Vault
from conftest import ARABIC_TEXT, PASSPHRASE

NEW_PASSPHRASE = "عبارة مرور جديدة بعد الاستعادة"


@pytest.fixture
def split_vault(tmp_path: Path) -> tuple[Path, list[recovery.RecoveryShare]]:
    root = tmp_path / "vault"
    src = tmp_path / "شهادة.txt"
    src.write_text(ARABIC_TEXT, encoding="utf-8")
    with Vault.create(root, PASSPHRASE) as vault:
        vault.add([src])
        made = recovery.split(root / "key", vault.keys, 3, 5)
    return root, made


def _parse(made: list[recovery.RecoveryShare]) -> list[shares.Share]:
    return recovery.parse([(f"share {r.share.index}", r.text) for r in made])


def test_any_three_of_five_reopen_the_vault_under_a_new_passphrase(split_vault) -> None:
    root, made = split_vault
    for subset in itertools.combinations(made, 3):  # all ten: the key is the same each time
        assert (
            recovery.unlock(root / "key", _parse(list(subset))).master
            == recovery.unlock(root / "key", _parse(made[:3])).master
        )
    recovery.recover(root / "key", _parse([made[4], made[1], made[2]]), NEW_PASSPHRASE)
    with Vault.open(root, NEW_PASSPHRASE) as vault:
        item = vault.items()[0]
        assert b"".join(vault.read(item)).decode() == ARABIC_TEXT
    with pytest.raises(WrongPassphrase):
        Vault.open(root, PASSPHRASE)
    # The shares still work after a recovery (until the next split).
    recovery.recover(root / "key", _parse(made[2:]), PASSPHRASE)
    Vault.open(root, PASSPHRASE).close()


def test_share_text_is_self_describing_and_survives_retyping(split_vault) -> None:
    root, made = split_vault
    with Vault.open(root, PASSPHRASE) as vault:
        vault_id = vault.keys.vault_id
    s = made[1].share
    assert (s.k, s.n, s.index) == (3, 5, 2) and s.group.startswith(vault_id)
    assert made[1].text.startswith(f"athar-share/1 recovery {vault_id.hex()}")
    # Retyped from paper: upper case, line breaks, surrounding words.
    retyped = "الحصة:\n" + "\n  ".join(made[1].text.upper().split(" ")) + "\nشكراً"
    assert shares.Share.parse(retyped) == s


def _bad(root: Path, texts: list[str], match: str) -> None:
    before = (root / "key").read_bytes()
    with pytest.raises(InputError, match=match):
        given = recovery.parse([(f"share {i}", t) for i, t in enumerate(texts)])
        recovery.recover(root / "key", given, NEW_PASSPHRASE)
    assert (root / "key").read_bytes() == before  # nothing changed


def test_fewer_than_k_shares_are_refused(split_vault) -> None:
    root, made = split_vault
    _bad(root, [made[0].text, made[3].text], "3 shares are needed and only 2 were given")
    _bad(root, [], "no shares given")


def test_a_duplicated_share_is_refused(split_vault) -> None:
    root, made = split_vault
    _bad(root, [made[0].text, made[1].text, made[0].text], "share #1 was given twice")


def test_a_corrupted_share_is_refused_by_its_checksum(split_vault) -> None:
    root, made = split_vault
    text = made[2].text
    data = made[2].share.data.hex()
    flipped = text.replace(data, ("0" if data[0] != "0" else "1") + data[1:])
    _bad(root, [made[0].text, made[1].text, flipped], "share 2 is damaged")
    _bad(root, [made[0].text, "athar-share/1 recovery 00 3-of-5", made[1].text], "not an Athar")


def test_a_wrong_share_with_a_valid_checksum_is_refused(split_vault) -> None:
    root, made = split_vault
    forged = shares.Share(
        "recovery", made[2].share.group, 3, 5, 3, bytes(x ^ 1 for x in made[2].share.data)
    )
    _bad(root, [made[0].text, made[1].text, forged.to_text()], "do not open this vault")
    two_claims = shares.Share("recovery", made[2].share.group, 3, 5, 1, made[2].share.data)
    _bad(root, [made[0].text, made[1].text, two_claims.to_text()], "both claim to be #1")


def test_mixed_shares_and_shares_of_an_older_split_are_refused(split_vault, tmp_path) -> None:
    root, old = split_vault
    with Vault.open(root, PASSPHRASE) as vault:
        new = recovery.split(root / "key", vault.keys, 2, 3)
    _bad(root, [old[0].text, new[1].text, new[2].text], "different splits")
    _bad(root, [o.text for o in old[:3]], "older split")  # retired by the new split
    other_root = tmp_path / "other"
    with Vault.create(other_root, PASSPHRASE) as other:
        foreign = recovery.split(other_root / "key", other.keys, 2, 2)
    _bad(root, [f.text for f in foreign], "another vault")
    _bad(root, [new[0].text, "athar-share/1 …"], "not an Athar share")


def test_a_vault_never_split_and_bad_thresholds(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    with Vault.create(root, PASSPHRASE) as vault:
        for k, n in ((1, 3), (4, 3), (2, 256), (0, 0)):
            with pytest.raises(InputError, match="need 2 <= k <= n"):
                recovery.split(root / "key", vault.keys, k, n)
        assert not recovery.has_recovery(root / "key")
        made = shares.make_shares("recovery", vault.keys.vault_id + b"\0" * 8, os.urandom(32), 2, 2)
    with pytest.raises(InputError, match="no recovery shares"):
        recovery.unlock(root / "key", recovery.parse([("a", s.to_text()) for s in made]))
    disclosure = shares.make_shares("disclosure", b"\1" * 16, os.urandom(32), 2, 2)
    with pytest.raises(InputError, match="not a vault recovery share"):
        recovery.parse([("x", disclosure[0].to_text())])


def test_paper_shares_are_private_files_whose_qr_codes_hold_the_share(split_vault, tmp_path):
    _, made = split_vault
    out = tmp_path / "أوراق"
    files = recovery.write_paper(made, out)
    assert len(files) == 15 and stat.S_IMODE(out.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    paper = (out / "athar-share-4-of-5.txt").read_text(encoding="utf-8")
    assert "أي 3 حصص تفتح الخزنة" in paper and made[3].text in paper
    assert shares.Share.parse(paper) == made[3].share
    try:
        import cv2
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("OpenCV is needed to decode the QR codes in CI", pytrace=False)
        pytest.skip("OpenCV not installed")
    image = cv2.imread(str(out / "athar-share-4-of-5.png"))
    decoded, _, _ = cv2.QRCodeDetector().detectAndDecode(image)
    assert decoded == made[3].text
    with pytest.raises(InputError, match="not empty"):
        recovery.write_paper(made, out)


def test_cli_split_and_join(cli, vault_dir, tmp_path) -> None:
    assert cli("init").exit_code == 0
    out = tmp_path / "shares"
    r = cli("recovery", "split", "-k", "2", "-n", "3", "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["files"]) == 9
    papers = sorted(out.glob("*.txt"))
    r = cli(
        "recovery",
        "join",
        str(papers[0]),
        "--new-passphrase",
        "--json",
        env={"ATHAR_NEW_PASSPHRASE": NEW_PASSPHRASE, "ATHAR_PASSPHRASE": ""},
    )
    assert r.exit_code == 2 and "2 shares are needed and only 1 were given" in r.output
    r = cli(
        "recovery",
        "join",
        str(papers[0]),
        str(papers[2]),
        env={"ATHAR_NEW_PASSPHRASE": NEW_PASSPHRASE, "ATHAR_PASSPHRASE": ""},
    )
    assert r.exit_code == 2 and "add --new-passphrase" in r.output
    r = cli(
        "recovery",
        "join",
        str(papers[0]),
        str(papers[2]),
        "--new-passphrase",
        env={"ATHAR_NEW_PASSPHRASE": NEW_PASSPHRASE, "ATHAR_PASSPHRASE": ""},
    )
    assert r.exit_code == 0, r.output
    assert cli("ls", env={"ATHAR_PASSPHRASE": NEW_PASSPHRASE}).exit_code == 0
    assert cli("ls").exit_code == WrongPassphrase.exit_code
    r = cli(
        "--lang",
        "ar",
        "recovery",
        "join",
        str(papers[1]),
        "--new-passphrase",
        env={"ATHAR_NEW_PASSPHRASE": NEW_PASSPHRASE},
    )
    assert r.exit_code == 2


def test_keyfile_without_recovery_is_unchanged_by_this_feature(tmp_path: Path) -> None:
    """Old key files (no recovery, no guard) still open through the one-Argon2id path."""
    root = tmp_path / "vault"
    Vault.create(root, PASSPHRASE).close()
    doc = json.loads((root / "key").read_bytes())
    assert "recovery" not in doc and "guard" not in doc
    assert keyfile.unlock(root / "key", PASSPHRASE).vault_id
