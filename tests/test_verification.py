"""Verification records: one per item, every change a signed event, bad input refused
with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from athar.errors import AtharError
from athar.records.service import Records
from athar.vault.vault import Vault
from athar.verify import verification

REASONING = "المبنى المتضرر يطابق صور الأقمار الصناعية؛ الظلال تشير إلى الصباح."


def _items(vault: Vault, tmp_path: Path, n: int) -> list:  # type: ignore[type-arg]
    paths = []
    for i in range(n):
        p = tmp_path / f"شاهد-{i}.txt"
        p.write_text(f"شهادة رقم {i}", encoding="utf-8")
        paths.append(p)
    return [r.item for r in vault.add(paths).results]


def test_verdict_created_updated_with_history_and_links(tmp_path: Path, records: Records) -> None:
    item, other = _items(records.vault, tmp_path, 2)
    rid, changed = verification.set_verdict(
        records,
        item,
        {"status": "in_review", "check.date": "inconclusive", "verifier": "ليلى"},
    )
    assert changed and rid == verification.record_id(item) and rid.startswith("ver-")
    rid2, changed = verification.set_verdict(
        records,
        item,
        {"status": "متحقق منه", "reasoning": REASONING, "location": "consistent"},
        corroborating=[other],
    )
    assert rid2 == rid and changed
    view = records.get(rid)
    assert view.data["status"] == "verified"  # given by its Arabic label
    assert view.data["check.location"] == "consistent"
    assert view.data["check.date"] == "inconclusive"
    assert view.data["reasoning"] == REASONING
    assert view.data["item"] == item.id
    assert [(link["rel"], link["dst"]) for link in view.links] == [("corroborating", other.id)]
    history = records.history(rid)
    assert [h["kind"] for h in history] == ["record.created", "record.updated", "record.linked"]
    assert history[0]["fields"]["status"]["current"] is False
    # the same verdict again changes nothing and signs nothing
    size = records.vault.ledger.size()
    assert verification.set_verdict(records, item, {"status": "verified"}) == (rid, False)
    assert records.vault.ledger.size() == size
    assert [r["id"] for r in verification.queue(records, "verified")] == [rid]
    assert verification.queue(records, "disputed") == []


@pytest.mark.parametrize(
    "fields, fault",
    [
        ({"status": "probably"}, "verification_status"),
        ({"status": "verified", "check.date": "yes"}, "check_result"),
        ({"status": "verified", "colour": "red"}, "colour"),
        ({"status": "verified", "date": "2017-02-30"}, "date"),
    ],
)
def test_bad_verdicts_are_refused_and_nothing_written(
    tmp_path: Path, records: Records, fields: dict[str, str], fault: str
) -> None:
    (item,) = _items(records.vault, tmp_path, 1)
    size = records.vault.ledger.size()
    with pytest.raises(AtharError) as caught:
        verification.set_verdict(records, item, fields)
    assert fault in str(caught.value)
    assert records.vault.ledger.size() == size
    assert verification.get(records, item) is None


def test_an_item_cannot_corroborate_itself_or_be_replaced(tmp_path: Path, records: Records) -> None:
    item, other = _items(records.vault, tmp_path, 2)
    with pytest.raises(AtharError, match="corroborate itself"):
        verification.set_verdict(records, item, {"status": "disputed"}, corroborating=[item])
    assert verification.get(records, item) is None  # refused before anything was written
    verification.set_verdict(
        records, item, {"check.date": "consistent", "check.content": "consistent"}
    )
    view = verification.get(records, item)  # two checks with one result: one search term
    assert view is not None
    with pytest.raises(AtharError, match="cannot be changed"):
        verification.set_verdict(records, item, {"item": other.id})


def test_verdict_cli(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    p = tmp_path / "صورة.txt"
    p.write_text("x", encoding="utf-8")
    q = tmp_path / "دليل.txt"
    q.write_text("y", encoding="utf-8")
    added = json.loads(cli("add", str(p), str(q), "--json").stdout)["results"]
    item, other = added[0]["id"], added[1]["id"]
    out = cli(
        "verdict",
        item[:8],
        "status=misattributed",
        f"reasoning={REASONING}",
        "--corroborated-by",
        other[:8],
        "--json",
    )
    assert out.exit_code == 0, out.stdout
    record = json.loads(out.stdout)["record"]
    assert record["fields"]["status"] == "misattributed"
    assert record["links"][0]["dst"] == other
    bad = cli("verdict", item[:8], "status=nonsense", "--json")
    assert bad.exit_code == 2 and "nonsense" in json.loads(bad.stdout)["error"]
    assert cli("verdict", item[:8], "status").exit_code == 2
    queue = json.loads(cli("queue", "--json").stdout)
    assert [q["status"] for q in queue] == ["misattributed"]
    assert (
        "misattributed" in cli("history", record["id"]).stdout
        or cli("history", record["id"]).exit_code == 0
    )
