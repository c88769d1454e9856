"""Linkage speed (issue 7): the candidate pairs found by `model.register_pairs` are the
pairs Splink's own blocking finds, scored to the same probabilities, so the faster
path changes no cluster."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs installed
import pytest

from athar.linkage import model, service, synth
from athar.linkage.features import feature_table
from athar.linkage.lists import ListRow, read_lists


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> list[ListRow]:
    rows, truth = synth.generate(400, "hard", seed=3)
    lists, _ = synth.write(rows, truth, tmp_path_factory.mktemp("speed"))
    return read_lists([lists]).rows


def _splink_pairs(
    frame: pd.DataFrame, rules: list[tuple[str, ...]], trained: dict[str, Any]
) -> set[tuple[Any, Any, float]]:
    link = model.linker(frame, rules=rules, trained=trained)
    found = link.inference.predict().as_pandas_dataframe()
    return {
        (a, b, round(p, 12))
        for a, b, p in zip(
            found["unique_id_l"], found["unique_id_r"], found["match_probability"], strict=True
        )
    }


def _our_pairs(
    frame: pd.DataFrame, rules: list[tuple[str, ...]], trained: dict[str, Any]
) -> set[tuple[Any, Any, float]]:
    numbered, order = model.numbered(frame)
    link = model.linker(numbered, rules=rules, trained=trained)
    model.register_pairs(link, numbered, rules)
    ids = frame["unique_id"].tolist()
    left, right, prob = service.scored_pairs(link, 1e-300, ids, order)
    return {(ids[a], ids[b], round(p, 12)) for a, b, p in zip(left, right, prob, strict=True)}


@pytest.mark.parametrize("budget", [model.RULE_BUDGET, 0.5])
def test_registered_pairs_are_splinks_pairs(listed: list[ListRow], budget: float) -> None:
    frame = feature_table(listed)
    # a small budget refines the broad rules (three columns, the LACKS rule narrowed)
    rules = model.rule_columns(frame, budget=budget)
    assert any(f"{model.LACKS}given_key" in r for r in rules)
    link = model.linker(frame, rules=rules)
    model.train(link, len(frame))
    trained = link.misc.save_model_to_json()
    theirs = _splink_pairs(frame, rules, trained)
    ours = _our_pairs(frame, rules, trained)
    assert len(theirs) > len(frame)  # enough pairs to mean something
    assert ours == theirs
    # no pair twice, every pair oriented as Splink orients it (left id < right id)
    assert all(a < b for a, b, _ in ours)


def test_numbered_keeps_the_text_order() -> None:
    frame = pd.DataFrame({"unique_id": ["b-2", "a-10", "a-9", "ب-1"], "x": [1, 2, 3, 4]})
    numbered, order = model.numbered(frame)
    assert numbered["unique_id"].tolist() == [2, 0, 1, 3]
    assert [frame["unique_id"][i] for i in order] == sorted(frame["unique_id"])
    assert frame["unique_id"].tolist() == ["b-2", "a-10", "a-9", "ب-1"]  # left as it was


def test_block_keys_group_agreeing_records() -> None:
    frame = pd.DataFrame(
        {
            "unique_id": np.arange(5, dtype=np.int32),
            "given_skel": ["mhmd", "mhmd", None, "hsn", "mhmd"],
            "family_skel": ["hlb", "hlb", "hlb", "hlb", "hms"],
            "given_key": ["muhmd", None, None, "hsn", "mhmd"],
        }
    )
    rules: list[tuple[str, ...]] = [
        ("given_skel", "family_skel"),
        ("family_skel", f"{model.LACKS}given_key"),
    ]
    keys = model.block_keys(frame, rules)
    k0 = keys["k0"]
    assert k0[0] == k0[1] and k0[0] != k0[3] and k0[0] != k0[4] and pd.isna(k0[2])
    assert keys["lacks_given_key"].tolist() == [False, True, True, False, False]
    # the rules' pairs, each once: (0,1) by both rules, (0,2) (1,2) (1,3) (2,3) by the second
    import duckdb

    con = duckdb.connect()
    con.register("k", keys)
    got = sorted(map(tuple, con.sql(model.pairs_sql(rules, "k")).fetchall()))
    assert got == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    assert con.sql(model.pairs_sql([], "k")).fetchall() == []  # no rule, no pair
    assert len(got) < model.comparisons_of(frame, rules[0]) + model.comparisons_of(frame, rules[1])


def test_a_run_on_duckdb_scores_the_same_pairs(
    listed: list[ListRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's DuckDB path (numbered records, registered pairs) against Splink's
    own blocking with the run's saved model: the same pairs, the same probabilities."""
    seen: dict[str, Any] = {}
    scored = service.scored_pairs
    monkeypatch.setattr(service, "scored_pairs", lambda *a: seen.setdefault("pairs", scored(*a)))
    result = service.link_records(listed, match_at=0.3, review_from=0.05)
    ids = [r.record_id for r in listed]
    left, right, prob = seen["pairs"]
    ours = {(ids[a], ids[b], round(p, 12)) for a, b, p in zip(left, right, prob, strict=True)}
    trained = result.parameters["splink_model"]
    rules = [tuple(r) for r in result.parameters["run"]["blocking_rules"]]
    theirs = {x for x in _splink_pairs(feature_table(listed), rules, trained) if x[2] >= 0.05}
    assert len(ours) > len(listed) // 4
    assert ours == theirs
    assert (
        result.parameters["run"]["comparisons"] <= result.parameters["run"]["comparisons_at_most"]
    )
