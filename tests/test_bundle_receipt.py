"""Short receipts: one SMS (GSM 03.38, at most 160 characters) that still proves the
receiver holds the sender's ledger unchanged."""

from __future__ import annotations

import base64
import string
from pathlib import Path
from typing import Any

import pytest

from athar.errors import InputError, IntegrityError
from athar.i18n import translate
from athar.records.service import Records
from athar.sync import service
from athar.vault.vault import Vault

PW = "كلمة سر طويلة"
GSM7_SAFE = set(string.ascii_letters + string.digits + " +/=")


def make(root: Path, name: str) -> Vault:
    return Vault.create(root / name, PW)


def enrol(v: Vault, other: Vault) -> None:
    c = service.card(other)
    service.enrol(v, c["key"], c["age_recipient"], other.root.name, admin=False)


def deliver(a: Vault, b: Vault, folder: Path) -> int:
    sent = service.export_bundle(a, [service.card(b)["age_recipient"]], folder)
    service.import_bundles(b, sent.files)
    return sent.size


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Vault, Vault]:
    a, b = make(tmp_path, "field"), make(tmp_path, "office")
    enrol(a, b)
    enrol(b, a)
    with Records(a) as r:
        r.create("person", {"name_ar.full": "خالد يوسف"})
    return a, b


def test_short_receipt_fits_one_sms_and_prunes(pair: tuple[Vault, Vault], tmp_path: Path) -> None:
    a, b = pair
    size = deliver(a, b, tmp_path / "1")
    text = service.make_receipt(b, short=True)
    assert len(text) <= 160 and set(text) <= GSM7_SAFE
    done = service.ack(a, text)
    assert done["size"] == size and done["known_device"]
    with Records(a) as r:
        r.create("incident", {"title.ar": "قصف الحي الشرقي"})
    again = service.export_bundle(a, [service.card(b)["age_recipient"]], tmp_path / "2")
    assert again.since == size  # only what came after the receipt


def test_short_receipt_with_another_size_or_bit_is_refused(
    pair: tuple[Vault, Vault], tmp_path: Path
) -> None:
    a, b = pair
    size = deliver(a, b, tmp_path / "1")
    with Records(a) as r:
        r.create("incident", {"title.ar": "حدث لاحق"})  # a now holds more than b
    text = service.make_receipt(b, short=True)
    tag, _, blob = text.split(" ")
    with pytest.raises(IntegrityError, match="differs"):
        service.ack(a, f"{tag} {size + 1} {blob}")  # claims more than b holds
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    with pytest.raises(IntegrityError, match="differs"):
        service.ack(a, f"{tag} {size} {base64.b64encode(bytes(raw)).decode()}")
    with pytest.raises(IntegrityError, match="only"):
        service.ack(a, f"{tag} {size + 99} {blob}")
    with pytest.raises(InputError, match="not an Athar receipt"):
        service.ack(a, f"{tag} {size} ###")
    assert service.ack(a, text)["size"] == size


def test_short_receipt_needs_an_enrolled_receiver_and_the_right_vault(
    pair: tuple[Vault, Vault], tmp_path: Path
) -> None:
    a, b = pair
    deliver(a, b, tmp_path / "1")
    text = service.make_receipt(b, short=True)
    stranger = make(tmp_path, "غريب")
    with pytest.raises(InputError, match="not enrolled"):
        service.ack(stranger, text)
    # a third vault that knows b, but whose ledger b never received
    c = make(tmp_path, "lawyer")
    enrol(c, b)
    with Records(c) as r:
        for i in range(4):
            r.create("person", {"name_ar.full": f"شاهد {i}"})
    with pytest.raises(IntegrityError, match="another vault"):
        service.ack(c, text)


def test_a_receipt_that_is_not_text_is_refused_in_the_users_language(
    cli: Any, tmp_path: Path
) -> None:
    """Found by fuzzing: a non-UTF-8 receipt file made `athar bundle ack` print a traceback."""
    assert cli("init").exit_code == 0
    bad = tmp_path / "receipt.txt"
    bad.write_bytes(b"\xff\xfe\x00athar-receipt \xd9")
    result = cli("bundle", "ack", str(bad), env={"ATHAR_LANG": "ar"})
    assert result.exit_code == 2
    assert translate("this is not an Athar receipt", "ar") in result.output
    assert "Traceback" not in result.output
    missing = cli("bundle", "ack", str(tmp_path / "nowhere.txt"))
    assert missing.exit_code == 2 and "no such file" in missing.output
