"""The two record-schema pieces of issue 6: incidents marked for publication, and
verification records that show a title in lists like every other record type."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from athar.errors import AtharError
from athar.records.service import Records
from athar.vault.vault import Vault
from athar.verify import verification


@pytest.fixture
def store(vault: Vault) -> Iterator[Records]:
    records = Records(vault, None)
    yield records
    records.close()


def test_incident_publish_flag_in_both_languages(store: Records) -> None:
    rid = store.create("incident", {"title.ar": "قصف سوق الخضار", "publish": "نعم"})
    assert store.get(rid).data["publish"] is True
    assert store.update(rid, {"publish": "no"})
    assert store.get(rid).data["publish"] is False
    size = store.vault.ledger.size()
    with pytest.raises(AtharError):
        store.update(rid, {"publish": "ربما"})  # neither yes nor no
    assert store.vault.ledger.size() == size and store.get(rid).data["publish"] is False


def test_verification_record_has_a_title(tmp_path: Path, store: Records) -> None:
    clip = tmp_path / "مقطع.txt"
    clip.write_text("شهادة مصورة", encoding="utf-8")
    item = store.vault.add([clip]).results[0].item
    assert item is not None
    rid, _ = verification.set_verdict(store, item, {"status": "قيد المراجعة"})
    title = f"Verification of {item.short_id}: in_review"
    assert store.titles([rid]) == {rid: title}
    verification.set_verdict(store, item, {"status": "verified"})
    assert store.titles([rid])[rid].endswith(": verified")
