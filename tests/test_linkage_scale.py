"""Linkage at scale (issue 7): the array clustering gives exactly the clusters of the
former per-pair implementation (kept below as the reference), the feature table built
once per distinct value and in worker processes is exactly the row-by-row table, and a
run through the service clusters as the former code would have on the same pairs."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]  # no stubs installed
import pytest

from athar.linkage import featurepool, service, synth
from athar.linkage.clusters import (
    DAY_SPREAD,
    YEAR_SPREAD,
    Decision,
    Traits,
    _span,
    _union,
    cluster,
    cluster_id,
    cluster_numbered,
)
from athar.linkage.features import feature_table
from athar.linkage.lists import ListRow, read_lists
from athar.linkage.thresholds import REVIEW_REFUSED

# ------------------------------------------------- the former implementation, verbatim
# (its interval helpers _union and _span are unchanged in athar.linkage.clusters and
# imported from there)


class _Group:
    def __init__(self, t: Traits) -> None:
        self.given = {t.given} if t.given else set()
        self.father = {t.father} if t.father else set()
        self.mother = {t.mother} if t.mother else set()
        self.sex = {t.sex} if t.sex else set()
        self.years = (t.birth_year, t.birth_year) if t.birth_year is not None else None
        self.days: dict[str, tuple[int, int]] = {}
        if t.death_day is not None:
            self.days[t.status] = (t.death_day, t.death_day)

    def fits(self, o: _Group) -> bool:
        return (
            len(self.given | o.given) <= 1
            and len(self.father | o.father) <= 1
            and len(self.mother | o.mother) <= 1
            and len(self.sex | o.sex) <= 1
            and _span(self.years, o.years) <= YEAR_SPREAD
            and all(
                _span(span, o.days.get(status)) <= DAY_SPREAD for status, span in self.days.items()
            )
        )

    def absorb(self, o: _Group) -> None:
        self.given |= o.given
        self.father |= o.father
        self.mother |= o.mother
        self.sex |= o.sex
        self.years = _union(self.years, o.years)
        for status, (low, high) in o.days.items():
            old = self.days.get(status, (low, high))
            self.days[status] = (min(old[0], low), max(old[1], high))


class _Sets:
    def __init__(self, ids: Iterable[str]) -> None:
        self.parent = {i: i for i in ids}
        self.apart: dict[str, set[str]] = {}
        self.groups: dict[str, _Group] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def can_join(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        ga, gb = self.groups.get(ra), self.groups.get(rb)
        if ga is not None and gb is not None and not ga.fits(gb):
            return False
        small, big = sorted((ra, rb), key=lambda r: len(self.apart.get(r, ())))
        return not any(self.find(x) == big for x in self.apart.get(small, ()))

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if ra > rb:
            ra, rb = rb, ra
        self.parent[rb] = ra
        gb = self.groups.pop(rb, None)
        if gb is not None:
            if ra in self.groups:
                self.groups[ra].absorb(gb)
            else:
                self.groups[ra] = gb
        moved = self.apart.pop(rb, None)
        if moved:
            self.apart.setdefault(ra, set()).update(moved)


def former_cluster(
    record_ids: Sequence[str],
    pairs: Iterable[tuple[str, str, float]],
    threshold: float,
    decisions: Iterable[Decision] = (),
    traits: Mapping[str, Traits] | None = None,
) -> tuple[dict[str, str], dict[str, float | None], list[tuple[str, str, float]]]:
    sets = _Sets(record_ids)
    known = sets.parent
    probability: dict[str, float | None] = dict.fromkeys(record_ids)
    decided: dict[frozenset[str], bool] = {}
    for d in decisions:
        if d.left in known and d.right in known and d.left != d.right:
            decided[frozenset((d.left, d.right))] = d.match
    for pair, match in decided.items():
        if not match:
            a, b = tuple(pair)
            sets.apart.setdefault(sets.find(a), set()).add(b)
            sets.apart.setdefault(sets.find(b), set()).add(a)
    for pair, match in decided.items():
        if match:
            a, b = sorted(pair)
            if sets.can_join(a, b):
                sets.join(a, b)
                probability[a] = probability[b] = 1.0
    if traits:
        sets.groups = {}
        for rid in record_ids:
            root = sets.find(rid)
            group = _Group(traits.get(rid, Traits()))
            if root in sets.groups:
                sets.groups[root].absorb(group)
            else:
                sets.groups[root] = group
    refused: list[tuple[str, str, float]] = []
    strong = sorted(
        ((p, a, b) for a, b, p in pairs if p >= threshold), key=lambda t: (-t[0], t[1], t[2])
    )
    for p, a, b in strong:
        if decided.get(frozenset((a, b))) is False or not sets.can_join(a, b):
            refused.append((a, b, p))
            continue
        if sets.find(a) != sets.find(b):
            sets.join(a, b)
        for x in (a, b):
            if probability[x] is None or (probability[x] or 0.0) < p:
                probability[x] = p
    roots = {rid: sets.find(rid) for rid in record_ids}
    smallest: dict[str, str] = {}
    for rid, root in roots.items():
        if root not in smallest or rid < smallest[root]:
            smallest[root] = rid
    return {rid: cluster_id(smallest[root]) for rid, root in roots.items()}, probability, refused


# ------------------------------------------------------------------------- clustering


def _random_case(
    seed: int, n: int = 400
) -> tuple[list[str], list[tuple[str, str, float]], dict[str, Traits], list[Decision]]:
    """Namesakes on purpose: few names, years and days, so traits refuse many joins;
    probabilities from a short list so that ties are frequent."""
    rng = random.Random(seed)
    ids = [f"{rng.choice(['محمد', 'حسن', 'Ahmad', 'زينب'])}-{i:04d}" for i in range(n)]
    rng.shuffle(ids)
    traits = {
        rid: Traits(
            rng.choice([None, "muhammad", "hasan", ""]),
            rng.choice([None, "m", "f"]),
            rng.choice([None, 1970, 1972, 1980]),
            rng.choice([None, 16000, 16040, 16100]),
            rng.choice([None, None, "ali", "umar"]),
            rng.choice([None, None, None, "ruba"]),
            rng.choice(["killed", "detained", ""]),
        )
        for rid in ids
    }
    levels = [0.99, 0.95, 0.9, 0.6, 0.31, 0.3, 0.2, 0.05]
    pairs = []
    for _ in range(n * 4):
        a, b = rng.sample(ids, 2)
        pairs.append((a, b, rng.choice(levels)))
    decisions = [Decision(a, b, rng.random() < 0.5) for a, b, _ in rng.sample(pairs, n // 10)]
    for _ in range(n // 20):
        a, b = rng.sample(ids, 2)
        decisions.append(Decision(a, b, rng.random() < 0.4))
    decisions += [Decision("غائب", ids[0], False), Decision(ids[1], ids[1], True)]
    return ids, pairs, traits, decisions


@pytest.mark.parametrize("seed", range(8))
def test_clusters_are_the_former_implementation_s(seed: int) -> None:
    ids, pairs, traits, decisions = _random_case(seed)
    for kwargs in (
        {},
        {"traits": traits},
        {"decisions": decisions},
        {"decisions": decisions, "traits": traits},
    ):
        new = cluster(ids, pairs, 0.3, **kwargs)
        cluster_of, probability, refused = former_cluster(ids, pairs, 0.3, **kwargs)
        assert new.cluster_of == cluster_of
        assert new.probability == probability
        assert new.refused == refused


def test_a_reviewers_match_of_two_disagreeing_records_blocks_their_cluster() -> None:
    # the match puts two given names in one cluster; nothing else may join it, though a
    # pair inside it still counts
    ids = ["a-محمد", "b-حسن", "c-محمد"]
    traits = {"a-محمد": Traits("muhammad"), "b-حسن": Traits("hasan"), "c-محمد": Traits("muhammad")}
    pairs = [("a-محمد", "c-محمد", 0.9), ("a-محمد", "b-حسن", 0.8)]
    got = cluster(ids, pairs, 0.5, [Decision("a-محمد", "b-حسن", True)], traits)
    assert got.refused == [("a-محمد", "c-محمد", 0.9)]
    assert got.probability == {"a-محمد": 1.0, "b-حسن": 1.0, "c-محمد": None}
    assert (got.cluster_of, got.probability, got.refused) == former_cluster(
        ids, pairs, 0.5, [Decision("a-محمد", "b-حسن", True)], traits
    )


# --------------------------------------------------------------------------- features


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> list[ListRow]:
    rows, truth = synth.generate(500, "hard", seed=3)
    lists, _ = synth.write(rows, truth, tmp_path_factory.mktemp("scale"))
    loaded = read_lists([lists]).rows
    extra = [
        ListRow("x-1", "يدوي", "محمد الأحمد", "", "علي", "زينب", "m", 1980, 16000, "حلب", "حلب"),
        ListRow("x-2", "يدوي", "محمد الأحمد", "", "علي", "", None, None, None, "", ""),
        ListRow("x-3", "manual", "Ahmad", "أحمد", "", "", "f", 1990, -20, "Idlib", ""),
        ListRow("x-4", "manual", "Иван Петров", "", "", "", None, None, 3, "", "Homs"),
    ]
    return [*loaded, *extra]


def test_feature_frame_is_the_row_by_row_table(
    listed: list[ListRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = feature_table(listed)
    stats: dict[str, float] = {}
    alone = featurepool.feature_frame(listed, workers=1, stats=stats)
    pd.testing.assert_frame_equal(alone, expected)
    assert stats["fallback"] == 0.0  # the probes, not the plain path
    monkeypatch.setattr(featurepool, "CHUNK", 300)  # several tasks for two workers
    stats = {}
    pooled = featurepool.feature_frame(listed, workers=2, stats=stats)
    pd.testing.assert_frame_equal(pooled, expected)
    assert stats["fallback"] == 0.0 and stats["worker_cpu"] > 0  # the workers did it
    built = featurepool.distinct_table(listed, workers=1)
    assert built is not None
    pd.testing.assert_frame_equal(built, expected)  # without the run-time sample check


def test_the_run_time_check_compares_values_not_dtypes(
    listed: list[ListRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    # one row sampled: its empty columns (no grandfather, no mother) are all None there
    monkeypatch.setattr(featurepool, "SAMPLE", 1)
    sample = feature_table(listed[:1])
    assert any(sample[c].isna().all() for c in sample.columns)
    stats: dict[str, float] = {}
    featurepool.feature_frame(listed, workers=1, stats=stats)
    assert stats["fallback"] == 0.0


def test_a_wrong_dependency_map_falls_back_to_the_plain_table(
    listed: list[ListRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    # as if feature_row's place key came to depend on the governorate as well
    wrong = tuple(
        (("governorate",), c) if c == ("place_key",) else (f, c) for f, c in featurepool.DEPENDS
    )
    monkeypatch.setattr(featurepool, "DEPENDS", wrong)
    stats: dict[str, float] = {}
    frame = featurepool.feature_frame(listed, workers=1, stats=stats)
    assert stats["fallback"] == 1.0
    pd.testing.assert_frame_equal(frame, feature_table(listed))
    # a column the map does not name at all: the plain path, without probing
    missing = tuple(d for d in featurepool.DEPENDS if "governorate" not in d[1])
    monkeypatch.setattr(featurepool, "DEPENDS", missing)
    assert featurepool.distinct_table(listed) is None


# ---------------------------------------------------------------------------- service


def test_a_run_clusters_as_the_former_code_on_the_same_pairs(
    listed: list[ListRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    numbered = cluster_numbered

    def spy(ids: Sequence[str], left: Any, right: Any, prob: Any, *args: Any, **kw: Any) -> Any:
        seen["pairs"] = list(zip(left.tolist(), right.tolist(), prob.tolist(), strict=True))
        return numbered(ids, left, right, prob, *args, **kw)

    monkeypatch.setattr(service, "cluster_numbered", spy)
    scored = service.scored_pairs
    monkeypatch.setattr(
        service,
        "scored_pairs",
        lambda *a: seen.setdefault("scored", scored(*a)),
    )
    ids = [r.record_id for r in listed]
    decisions = [Decision(ids[0], ids[1], True), Decision(ids[2], ids[3], False)]
    result = service.link_records(listed, decisions=decisions, match_at=0.3, review_from=0.05)
    left, right, prob = seen["scored"]
    pairs = [(ids[a], ids[b], p) for a, b, p in zip(left, right, prob.tolist(), strict=True)]
    assert len(pairs) > len(listed) // 4  # enough pairs to mean something
    # the former service: held pairs out, traits from the frame, then the former clustering
    frame = feature_table(listed)
    given = {
        rid: gid
        for rid, gid in zip(frame["unique_id"], frame["given_id"], strict=True)
        if isinstance(gid, str)
    }
    held = {
        (a, b)
        for a, b, p in pairs
        if p >= 0.3 and a in given and b in given and given[a] != given[b]
    }
    kept = [x for x in pairs if (x[0], x[1]) not in held]
    traits = service.traits(frame, {r.record_id: r.status for r in listed})
    cluster_of, probability, refused = former_cluster(ids, kept, 0.3, decisions, traits)
    assert result.clustering.cluster_of == cluster_of
    assert result.clustering.probability == probability
    assert result.clustering.refused == refused
    band = {(a, b) for a, b, p in kept if 0.05 <= p < 0.3} - {(ids[2], ids[3]), (ids[3], ids[2])}
    queued = [(p.left, p.right) for p in result.review]
    assert set(queued[: len(band)]) == band
    probs = [p.probability for p in result.review[: len(band)]]
    assert probs == sorted(probs, reverse=True)
    strong = {(a, b) for a, b, p in refused if p >= REVIEW_REFUSED}
    assert set(queued[len(band) :]) == (held | strong) - {(ids[2], ids[3]), (ids[3], ids[2])}
    assert result.seconds["features_cpu"] > 0 and result.seconds["clustering_cpu"] >= 0


def test_scored_pairs_read_in_batches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rows, truth = synth.generate(150, "easy", seed=5)
    loaded = read_lists([synth.write(rows, truth, tmp_path)[0]]).rows
    whole = service.link_records(loaded)
    monkeypatch.setattr(service, "PAIRS_BATCH", 7)
    again = service.link_records(loaded, trained=whole.parameters["splink_model"])
    assert again.clustering.cluster_of == whole.clustering.cluster_of
    assert [(p.left, p.right) for p in again.review] == [(p.left, p.right) for p in whole.review]
