"""`athar link run`, `athar link review` and `athar trace` on a vault's person records:
decisions are signed ledger events that every later run respects, and tracing never
shows or logs who is searching."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from athar.records.service import Records
from athar.vault.vault import Vault

REPORTER = "أم خالد الحلبية"
CONTACT = "+963 944 123 456"

PEOPLE = [
    # (Arabic full name, Latin full name, sex, age, status, date, place)
    ("محمد أحمد خالد الحلبي", None, "male", 34, "killed", "2016-03-24", "حلب"),
    (None, "Mohammad Ahmad Al-Halabi", "male", 35, "killed", "2016-03-25", "حلب"),
    ("محمّد احمد الحلبى", None, "male", None, "detained", "2015-01-10", "حلب"),
    ("حسن أحمد خالد الحلبي", None, "male", 30, "killed", "2016-03-24", "حلب"),
    ("زينب علي حسين الزعبي", None, "female", 20, "killed", "2014-01-02", "درعا"),
    ("عمر سعيد الحموي", None, "male", 41, "displaced", "2013-05-05", "حماة"),
]


def _populate(vault: Vault) -> list[str]:
    ids = []
    with Records(vault) as store:
        for ar, latin, sex, age, status, date, place in PEOPLE:
            fields: dict[str, Any] = {"sex": sex}
            if ar:
                fields["name_ar.full"] = ar
            if latin:
                fields["name_latin.full"] = latin
            if age is not None:
                fields["age"] = age
            pid = store.create("person", fields)
            store.create(
                "status", {"person": pid, "status": status, "date": date, "place.name_ar": place}
            )
            ids.append(pid)
    return ids


@pytest.fixture
def people(vault: Vault) -> list[str]:
    return _populate(vault)


def _linked(cli: Callable[..., Any]) -> dict[str, Any]:
    result = cli("link", "run", "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _together(data: dict[str, Any], a: str, b: str) -> bool:
    return any(a in ids and b in ids for ids in data["linked"].values())


def test_run_links_spellings_and_holds_brothers_for_review(
    people: list[str], cli: Callable[..., Any], tmp_path: Path
) -> None:
    data = _linked(cli)
    assert _together(data, people[0], people[1])  # Arabic and Latin spellings
    assert _together(data, people[0], people[2])
    assert not _together(data, people[0], people[3])  # his brother
    pairs = {frozenset((p["left"], p["right"])) for p in data["review"]}
    assert frozenset((people[0], people[3])) in pairs  # ... goes to a reviewer
    out = tmp_path / "clusters.csv"
    assert cli("link", "run", "--out", str(out)).exit_code == 0
    assert out.read_text(encoding="utf-8").startswith("record_id,cluster_id,match_probability")


def test_decisions_are_signed_events_respected_by_later_runs(
    people: list[str], vault: Vault, cli: Callable[..., Any]
) -> None:
    before = _linked(cli)
    assert _together(before, people[0], people[1])
    result = cli("link", "review", people[0], people[1], "--decision", "non-match", "--json")
    assert result.exit_code == 0, result.output
    event_id = json.loads(result.stdout)["event"]
    after = _linked(cli)
    assert not _together(after, people[0], people[1])  # the decision split the cluster
    assert cli("link", "review", people[4], people[5], "--decision", "match").exit_code == 0
    assert _together(_linked(cli), people[4], people[5])
    kinds = [(e.id, e.event.kind) for e in vault.ledger.events()]
    assert (event_id, "linkage.decision") in kinds
    decision = next(e for e in vault.ledger.events() if e.id == event_id)
    assert decision.signature_valid()
    assert decision.event.body["decision"] == "non_match"
    # A later decision on the same pair replaces the earlier one.
    assert cli("link", "review", people[1], people[0], "--decision", "match").exit_code == 0
    assert _together(_linked(cli), people[0], people[1])


def test_review_lists_pairs_and_refuses_bad_decisions(
    people: list[str], cli: Callable[..., Any]
) -> None:
    listed = cli("link", "review", "--json")
    assert listed.exit_code == 0
    pairs = json.loads(listed.stdout)["pairs"]
    assert pairs and all("left_name" in p for p in pairs)
    bad = cli("link", "review", people[0], people[1], "--decision", "perhaps", "--json")
    assert bad.exit_code == 2
    same = cli("link", "review", people[0], people[0], "--decision", "match", "--json")
    assert same.exit_code == 2
    missing = cli("link", "review", people[0], "per-doesnotexist0", "--decision", "match", "--json")
    assert missing.exit_code == 2


def test_trace_ranks_candidates_with_reasons_and_hides_the_searcher(
    people: list[str], vault: Vault, cli: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    with Records(vault) as store:
        sought = store.create(
            "person", {"name_ar.full": "محمد احمد الحلبي", "sex": "male", "age": 34}
        )
        report = store.create(
            "missing",
            {
                "person": sought,
                "reporter.name": REPORTER,
                "reporter.contact": CONTACT,
                "reporter.relationship": "mother",
                "last_seen.date": "2016-03-20",
                "last_seen.place.name_ar": "حلب",
            },
        )
    caplog.set_level(logging.DEBUG)
    result = cli("trace", report, "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)["candidates"]
    assert found[0]["record_id"] in (people[0], people[1], people[2])
    assert found[0]["match_probability"] > 0.5
    assert "given name" in found[0]["agreed"]
    assert found[0]["reasons"]
    assert sought not in {c["record_id"] for c in found}
    text = cli("trace", report, env={"ATHAR_LANG": "ar"})
    assert text.exit_code == 0
    assert "الاسم" in text.output
    for output in (result.output, text.output, caplog.text):
        assert REPORTER not in output and CONTACT not in output
        assert "خالد الحلبية" not in output


def test_trace_refuses_what_is_not_a_report(people: list[str], cli: Callable[..., Any]) -> None:
    result = cli("trace", people[0], "--json")
    assert result.exit_code == 2
    assert "not a missing-person report" in json.loads(result.stdout)["error"]


def test_run_on_a_vault_without_people(vault: Vault, cli: Callable[..., Any]) -> None:
    result = cli("link", "run", "--json")
    assert result.exit_code == 2
