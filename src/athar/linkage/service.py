"""Linkage as one call: records in, clusters and a review queue out.

The CLI (standalone lists and vault) and the web app call `link_records`; it computes
the comparison table, trains and checks the Splink model, scores candidate pairs,
clusters them with the reviewers' decisions, and returns everything a run saves: the
clusters, the pairs in the uncertain band for review, and the model's parameters with
how training went.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd  # type: ignore[import-untyped]  # no stubs installed

from athar.errors import InputError
from athar.linkage import model
from athar.linkage.clusters import Clustering, Decision, Traits, cluster
from athar.linkage.features import feature_table, third_script
from athar.linkage.lists import ListRow
from athar.linkage.thresholds import MATCH_AT, REVIEW_FROM, REVIEW_REFUSED
from athar.vault.progress import Progress


@dataclass
class ReviewPair:
    left: str
    right: str
    probability: float


@dataclass
class LinkResult:
    clustering: Clustering
    review: list[ReviewPair]
    parameters: dict[str, Any]
    notes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def clusters(self) -> int:
        return len(set(self.clustering.cluster_of.values()))


def link_records(
    rows: Sequence[ListRow],
    *,
    backend: model.Backend = "duckdb",
    decisions: Iterable[Decision] = (),
    match_at: float = MATCH_AT,
    review_from: float = REVIEW_FROM,
    progress: Progress | None = None,
    spark: Any = None,
    trained: dict[str, Any] | None = None,
) -> LinkResult:
    """Link *rows*; with *trained* (the `splink_model` of an earlier run's parameters)
    the saved model scores the pairs and nothing is re-estimated, so two backends or
    two runs give the same clusters."""
    if not 0 < review_from <= match_at < 1:
        raise InputError("thresholds must satisfy 0 < review ≤ match < 1")
    if backend not in ("duckdb", "spark"):
        raise InputError("unknown backend {name}; use duckdb or spark", name=backend)
    ids = [r.record_id for r in rows]
    if len(set(ids)) != len(ids):
        raise InputError("record ids must be unique")
    decisions = list(decisions)
    notes: list[tuple[str, dict[str, Any]]] = []
    seconds: dict[str, float] = {}
    steps = 4
    if progress is not None:
        progress.start(steps)
    t = time.perf_counter()
    frame = feature_table(rows)
    seconds["features"] = time.perf_counter() - t
    other = third_script(rows)
    if other:
        notes.append(
            (
                "{n} names are in neither Arabic nor Latin letters (e.g. record {id}); "
                "they are compared only as written",
                {"n": len(other), "id": other[0]},
            )
        )
    _advance(progress)
    training = model.Training()
    pairs: list[tuple[str, str, float]] = []
    parameters: dict[str, Any] = {}
    rules = model.rule_columns(frame)
    comparisons = sum(model.comparisons_of(frame, r) for r in rules)
    if len(rows) > 1:
        t = time.perf_counter()
        link = model.linker(frame, backend, spark=spark, trained=trained, rules=rules)
        if trained is None:
            empty = frozenset(c for c in frame.columns if frame[c].isna().all())
            training = model.train(link, len(rows), empty=empty)
            if training.degenerate:
                link = model.linker(frame, backend, spark=spark, rules=rules)
        seconds["training"] = time.perf_counter() - t
        _advance(progress)
        t = time.perf_counter()
        scored = model.predict(link, review_from)
        pairs = [
            (str(a), str(b), float(p)) for a, b, p in scored.itertuples(index=False, name=None)
        ]
        seconds["scoring"] = time.perf_counter() - t
        parameters = link.misc.save_model_to_json()
    else:
        _advance(progress)
    _advance(progress)
    if training.sessions and not training.converged:
        notes.append(
            (
                "EM did not converge in {n} iterations for some blocking rules; "
                "the parameters are usable but less certain",
                {"n": model.MAX_ITERATIONS},
            )
        )
    notes.extend(training.notes)
    # Brothers killed together share every field but the given name; two different
    # known given names (محمد / حسن) are never joined without a reviewer.
    given = {
        rid: gid
        for rid, gid in zip(frame["unique_id"], frame["given_id"], strict=True)
        if isinstance(gid, str)
    }
    held = [
        (a, b, p)
        for a, b, p in pairs
        if p >= match_at and a in given and b in given and given[a] != given[b]
    ]
    if held:
        held_keys = {(a, b) for a, b, _ in held}
        pairs = [x for x in pairs if (x[0], x[1]) not in held_keys]
    t = time.perf_counter()
    statuses = {r.record_id: r.status for r in rows}
    clustering = cluster(ids, pairs, match_at, decisions, traits(frame, statuses))
    seconds["clustering"] = time.perf_counter() - t
    decided = {frozenset((d.left, d.right)) for d in decisions}
    review = [
        ReviewPair(a, b, p)
        for a, b, p in sorted(pairs, key=lambda x: -x[2])
        if review_from <= p < match_at and frozenset((a, b)) not in decided
    ]
    # Strong pairs kept apart go to review too, but only the strongest of those the
    # traits refused: most are namesakes rightly split (two fathers, two birth years).
    refused = [x for x in clustering.refused if x[2] >= REVIEW_REFUSED]
    for a, b, p in [*held, *refused]:
        if frozenset((a, b)) not in decided:
            review.append(ReviewPair(a, b, p))
    known = set(ids)
    stale = sum(1 for d in decisions if d.left not in known or d.right not in known)
    if stale:
        notes.append(
            (
                "{n} reviewer decisions name records not in these lists and were not used",
                {"n": stale},
            )
        )
    _advance(progress)
    run = {
        "match_at": match_at,
        "review_from": review_from,
        "backend": backend,
        "records": len(rows),
        "blocking_rules": [list(r) for r in rules],
        # pairs the rules generate, a pair found by several rules counted once per rule
        "comparisons_at_most": comparisons,
        "trained": training.trained,
        "em_sessions": training.sessions,
        "converged": training.converged if training.sessions else None,
        "training_notes": [text.format(**params) for text, params in training.notes],
    }
    return LinkResult(clustering, review, {"run": run, "splink_model": parameters}, notes, seconds)


def traits(frame: pd.DataFrame, status: Mapping[str, str]) -> dict[str, Traits]:
    """Each record's given-name id, sex, year of birth and date of death, which the
    clustering keeps consistent within a cluster (see clusters.py)."""

    def value(x: Any) -> Any:
        return None if x is None or x is pd.NA or (isinstance(x, float) and x != x) else x

    out: dict[str, Traits] = {}
    columns = ("unique_id", "given_id", "sex", "birth_year", "death_day", "father_id", "mother_id")
    for rid, given, sex, year, day, father, mother in frame[list(columns)].itertuples(
        index=False, name=None
    ):
        year, day = value(year), value(day)
        out[str(rid)] = Traits(
            value(given),
            value(sex),
            int(year) if year is not None else None,
            int(day) if day is not None else None,
            value(father),
            value(mother),
            status.get(str(rid), ""),
        )
    return out


def _advance(progress: Progress | None) -> None:
    if progress is not None:
        progress.advance(1)
