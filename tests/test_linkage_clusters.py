"""Clustering with reviewers' constraints, stable cluster ids, the evaluation arithmetic
and the synthetic list generator (no Splink here: these are fast)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]  # no stubs installed
import pytest

from athar.errors import InputError
from athar.linkage import synth
from athar.linkage.clusters import Decision, Traits, cluster, cluster_id
from athar.linkage.evaluate import score
from athar.linkage.features import feature_table
from athar.linkage.files import read_decisions
from athar.linkage.lists import read_lists
from athar.linkage.model import comparisons_of, rule_columns

IDS = ["محمد-1", "محمد-2", "محمد-3", "حسن-1", "زينب-1"]


def test_chain_is_cut_by_a_non_match_decision() -> None:
    pairs = [("محمد-1", "محمد-2", 0.99), ("محمد-2", "محمد-3", 0.98), ("محمد-1", "محمد-3", 0.5)]
    plain = cluster(IDS, pairs, 0.9)
    assert plain.cluster_of["محمد-1"] == plain.cluster_of["محمد-3"]  # joined through محمد-2
    split = cluster(IDS, pairs, 0.9, [Decision("محمد-3", "محمد-1", False)])
    assert split.cluster_of["محمد-1"] != split.cluster_of["محمد-3"]
    assert split.cluster_of["محمد-1"] == split.cluster_of["محمد-2"]  # the stronger link kept
    assert split.refused == [("محمد-2", "محمد-3", 0.98)]


def test_match_decision_joins_and_unknown_records_are_ignored() -> None:
    decided = [Decision("حسن-1", "زينب-1", True), Decision("x", "y", False)]
    result = cluster(IDS, [], 0.9, decided)
    assert result.cluster_of["حسن-1"] == result.cluster_of["زينب-1"]
    assert result.probability["حسن-1"] == 1.0
    assert len(set(result.cluster_of.values())) == 4


def test_cluster_ids_do_not_depend_on_order() -> None:
    pairs = [("محمد-1", "محمد-2", 0.99), ("حسن-1", "زينب-1", 0.95)]
    a = cluster(IDS, pairs, 0.9)
    shuffled = IDS[:]
    random.Random(1).shuffle(shuffled)
    b = cluster(shuffled, [(y, x, p) for x, y, p in reversed(pairs)], 0.9)
    assert a.cluster_of == b.cluster_of
    assert a.cluster_of["محمد-2"] == cluster_id("محمد-1")
    assert a.cluster_of["زينب-1"] == cluster_id("حسن-1")


def test_scores_by_hand() -> None:
    truth = {"a": "p1", "b": "p1", "c": "p1", "d": "p2", "e": "p3"}
    predicted = {"a": "x", "b": "x", "c": "y", "d": "y", "e": "z"}
    s = score(predicted, truth)
    # true pairs: ab ac bc (3); predicted: ab cd (2); both: ab (1)
    assert (s.true_pairs, s.predicted_pairs) == (3, 2)
    assert s.pairwise_precision == 0.5
    assert s.pairwise_recall == pytest.approx(1 / 3, abs=1e-4)
    assert s.cluster_precision == pytest.approx(1 / 3, abs=1e-4)  # only z is exact
    assert score(truth, truth).pairwise_f1 == 1.0
    with pytest.raises(InputError):
        score({"zz": "x"}, truth)


def test_decisions_file(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("left,right,decision\na,b,نعم\nc,d,لا\ne,f,\n", encoding="utf-8")
    got = {(d.left, d.right): d.match for d in read_decisions(f)}
    assert got == {("a", "b"): True, ("c", "d"): False}
    f.write_text("left,right\na,b\n", encoding="utf-8")
    with pytest.raises(InputError):
        read_decisions(f)


def test_generator_is_deterministic_skewed_and_mixed(tmp_path: Path) -> None:
    rows, truth = synth.generate(400, "hard", seed=9)
    again, _ = synth.generate(400, "hard", seed=9)
    assert rows == again
    assert len(set(truth.values())) == 400 and len(rows) > 400
    given = Counter(r["full_name"].split()[0] for r in rows)
    assert given.most_common(1)[0][1] > 10 * sorted(given.values())[len(given) // 2]  # skew
    arabic = sum(any("\u0600" <= c <= "\u06ff" for c in r["full_name"]) for r in rows)
    assert 0.3 < arabic / len(rows) < 0.95  # two scripts
    assert any(r["full_name"].startswith(("أبو", "Abu", "أم", "Umm")) for r in rows)
    lists, truth_file = synth.write(rows, truth, tmp_path)
    loaded = read_lists([lists])
    assert len(loaded.rows) == len(rows)
    frame = feature_table(loaded.rows)
    assert frame["given_key"].notna().mean() > 0.9
    assert truth_file.read_text(encoding="utf-8").startswith("record_id,person_id")
    with pytest.raises(ValueError):
        synth.generate(10, "impossible")  # type: ignore[arg-type]


def test_capitalised_family_name_with_article_comes_first() -> None:
    from athar.linkage.nameparse import parse_name

    assert parse_name("AL-AHMAD Kholoud").family == "AL AHMAD"
    assert parse_name("AL-AHMAD Kholoud").given == "Kholoud"
    assert parse_name("Kholoud AL-AHMAD").family == "AL AHMAD"
    assert parse_name("خلود الأحمد").family == "الأحمد"


def test_traits_stop_a_chain_of_namesakes() -> None:
    # محمد الأحمد born 1980 — محمد الأحمد, no year — محمد الأحمد born 1995: the record
    # without a year links to each, but one cluster cannot hold both years.
    ids = ["م-1980", "م-بلا", "م-1995"]
    traits = {
        "م-1980": Traits("muhammad", "m", 1980),
        "م-بلا": Traits("muhammad", "m"),
        "م-1995": Traits("muhammad", "m", 1995),
    }
    pairs = [("م-1980", "م-بلا", 0.97), ("م-بلا", "م-1995", 0.95)]
    chained = cluster(ids, pairs, 0.9)
    assert chained.cluster_of["م-1980"] == chained.cluster_of["م-1995"]
    held = cluster(ids, pairs, 0.9, traits=traits)
    assert held.cluster_of["م-1980"] == held.cluster_of["م-بلا"]  # the stronger link
    assert held.cluster_of["م-1995"] != held.cluster_of["م-1980"]
    assert held.refused == [("م-بلا", "م-1995", 0.95)]  # ... goes to review
    # a reviewer's match joins whatever the traits say
    forced = cluster(ids, pairs, 0.9, [Decision("م-1980", "م-1995", True)], traits)
    assert forced.cluster_of["م-1980"] == forced.cluster_of["م-1995"]


@pytest.mark.parametrize(
    ("status", "together"),
    [(("killed", "killed"), False), (("detained", "killed"), True)],
)
def test_dates_only_bind_records_of_the_same_status(
    status: tuple[str, str], together: bool
) -> None:
    # A detention in 2013 and a death in 2016 are one life; two deaths three years
    # apart are two people (or a reviewer's question).
    a = Traits("hasan", "m", 1980, 15700, status=status[0])
    b = Traits("hasan", "m", 1980, 16800, status=status[1])
    result = cluster(
        ["حسن-1", "حسن-2"], [("حسن-1", "حسن-2", 0.99)], 0.9, traits={"حسن-1": a, "حسن-2": b}
    )
    assert (result.cluster_of["حسن-1"] == result.cluster_of["حسن-2"]) is together
    assert len(result.refused) == (0 if together else 1)


def test_different_fathers_are_different_people() -> None:
    a, b = Traits("ali", "m", father="muhammad"), Traits("ali", "m", father="mahmud")
    result = cluster(
        ["علي-1", "علي-2"], [("علي-1", "علي-2", 0.99)], 0.9, traits={"علي-1": a, "علي-2": b}
    )
    assert result.cluster_of["علي-1"] != result.cluster_of["علي-2"]


def _frame(n: int, towns: int) -> pd.DataFrame:
    """n records of محمد الأحمد spread over *towns* towns and 20 three-year windows."""
    frame = pd.DataFrame(
        {
            "given_skel": ["mhmd"] * n,
            "family_skel": ["ahmd"] * n,
            "place_key": [f"town{i % towns}" for i in range(n)],
            "birth_win": [i % 20 for i in range(n)],
        }
    )
    for column in ("given_id", "father_skel", "death_win_a", "death_win_b", "birth_year", "sex"):
        frame[column] = None
    return frame


def test_comparisons_are_counted_from_block_sizes() -> None:
    frame = _frame(60, 3)
    assert comparisons_of(frame, ("given_skel", "family_skel")) == 60 * 59 // 2
    assert comparisons_of(frame, ("given_skel", "family_skel", "place_key")) == 3 * 20 * 19 // 2
    frame.loc[0, "place_key"] = None  # a missing value agrees with nothing
    assert comparisons_of(frame, ("place_key",)) == 19 * 18 // 2 + 2 * 20 * 19 // 2
    assert comparisons_of(frame, ("sex",)) == 0


def test_blocking_rules_are_refined_until_comparisons_fit_the_budget() -> None:
    frame = _frame(60, 10)  # given + family alone: 1,770 pairs for 60 records
    rules = rule_columns(frame, budget=5)
    assert ("given_skel", "family_skel") not in rules
    assert ("given_skel", "family_skel", "birth_win") in rules  # 20 × 3 pairs
    assert ("given_skel", "place_key") in rules  # 10 × 15 pairs: kept as it is
    assert all(comparisons_of(frame, r) <= 5 * 60 for r in rules)
    # no rule narrower than one already kept
    assert not any(set(a) < set(b) for a in rules for b in rules)
    # a short list keeps the broad rule
    assert ("given_skel", "family_skel") in rule_columns(_frame(8, 10), budget=5)
