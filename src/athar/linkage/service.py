"""Linkage as one call: records in, clusters and a review queue out.

The CLI (standalone lists and vault) and the web app call `link_records`; it computes
the comparison table, trains and checks the Splink model, scores candidate pairs,
clusters them with the reviewers' decisions, and returns everything a run saves: the
clusters, the pairs in the uncertain band for review, and the model's parameters with
how training went.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs installed

from athar.errors import InputError
from athar.linkage import model
from athar.linkage.clusters import (
    NONE,
    Clustering,
    Decision,
    Floats,
    Ints,
    TraitCodes,
    Traits,
    cluster_numbered,
    string_ranks,
)
from athar.linkage.featurepool import feature_frame
from athar.linkage.features import third_script
from athar.linkage.lists import ListRow
from athar.linkage.thresholds import MATCH_AT, REVIEW_FROM, REVIEW_REFUSED
from athar.vault.progress import Progress

PAIRS_BATCH = 1 << 20  # scored pairs read from DuckDB at a time


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
    clock = _Clock(seconds)
    pool: dict[str, float] = {}
    frame = feature_frame(rows, stats=pool)
    clock.lap("features", extra_cpu=pool["worker_cpu"])
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
    left, right, prob = _no_pairs()
    parameters: dict[str, Any] = {}
    counter = model.BlockCounter(frame)
    rules = model.rule_columns(frame, counter=counter)
    scored: int | None = None  # distinct pairs scored, when known (DuckDB)
    comparisons = sum(counter.count(r) for r in rules)
    clock.lap("rules")
    if len(rows) > 1:
        link = model.linker(frame, backend, spark=spark, trained=trained, rules=rules)
        if trained is None:
            empty = frozenset(c for c in frame.columns if frame[c].isna().all())
            training = model.train(link, len(rows), empty=empty)
            if training.degenerate:
                link = model.linker(frame, backend, spark=spark, rules=rules)
        parameters = link.misc.save_model_to_json()
        clock.lap("training")
        _advance(progress)
        if backend == "duckdb":
            # the trained model scores records numbered in id order, on pairs found by
            # model.register_pairs (the pairs Splink's blocking would give, cheaper)
            del link
            gc.collect()
            numbered, order = model.numbered(frame)
            link = model.linker(numbered, backend, trained=parameters, rules=rules)
            scored = model.register_pairs(link, numbered, rules, counter)
            del numbered
            left, right, prob = scored_pairs(link, review_from, ids, order)
        else:
            left, right, prob = scored_pairs(link, review_from, ids)
        # DuckDB keeps its memory (up to its limit) until the connection goes
        del link, counter
        gc.collect()
        clock.lap("scoring")
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
    given = _codes(frame["given_id"], empty_is_none=False)
    held = (prob >= match_at) & (given[left] >= 0) & (given[right] >= 0)
    held &= given[left] != given[right]
    codes = trait_codes(frame, [r.status for r in rows])
    del frame
    rank = string_ranks(ids)
    kept = ~held
    clustering = cluster_numbered(
        ids, left[kept], right[kept], prob[kept], match_at, decisions, codes, rank=rank
    )
    clock.lap("clustering")
    number = {rid: i for i, rid in enumerate(ids)}
    decided = {
        (min(number[d.left], number[d.right]), max(number[d.left], number[d.right]))
        for d in decisions
        if d.left in number and d.right in number
    }
    band = kept & (prob >= review_from) & (prob < match_at)
    review = [
        ReviewPair(ids[a], ids[b], p)
        for a, b, p in _strongest_first(left[band], right[band], prob[band], rank, decided)
    ]
    # Strong pairs kept apart go to review too, but only the strongest of those the
    # traits refused: most are namesakes rightly split (two fathers, two birth years).
    for a, b, p in _strongest_first(left[held], right[held], prob[held], rank, decided):
        review.append(ReviewPair(ids[a], ids[b], p))
    for a_id, b_id, p in clustering.refused:
        if p >= REVIEW_REFUSED:
            a, b = number[a_id], number[b_id]
            if (min(a, b), max(a, b)) not in decided:
                review.append(ReviewPair(a_id, b_id, p))
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
    clock.lap("review")
    run = {
        "match_at": match_at,
        "review_from": review_from,
        "backend": backend,
        "records": len(rows),
        "blocking_rules": [list(r) for r in rules],
        # pairs the rules generate, a pair found by several rules counted once per rule
        "comparisons_at_most": comparisons,
        "comparisons": scored,  # the distinct pairs scored (DuckDB)
        "trained": training.trained,
        "em_sessions": training.sessions,
        "converged": training.converged if training.sessions else None,
        "training_notes": [text.format(**params) for text, params in training.notes],
    }
    return LinkResult(clustering, review, {"run": run, "splink_model": parameters}, notes, seconds)


class _Clock:
    """Wall and CPU seconds of each step (CPU counts DuckDB's threads and, for the
    features, the worker processes), into *seconds* as `step` and `step_cpu`."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self, step: str, extra_cpu: float = 0.0) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.seconds[step] = wall - self.wall
        self.seconds[f"{step}_cpu"] = cpu - self.cpu + extra_cpu
        self.wall, self.cpu = wall, cpu


def _no_pairs() -> tuple[Ints, Ints, Floats]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)


def scored_pairs(
    link: Any, threshold: float, ids: Sequence[str], order: Ints | None = None
) -> tuple[Ints, Ints, Floats]:
    """Pairs scored at or above *threshold* as three arrays: the two records' numbers
    (places in *ids*) and the probability. On DuckDB the linker's records are numbered
    (`model.numbered`; *order*[n] is the place of record n) and the pairs are read in
    batches: millions of pairs never become Python objects. On Spark (*order* None) the
    pairs come back as a frame."""
    result = link.inference.predict(threshold_match_probability=threshold)
    if order is None:
        frame = result.as_pandas_dataframe()
        index = pd.Index(ids)
        return (
            index.get_indexer(frame["unique_id_l"]).astype(np.int64),
            index.get_indexer(frame["unique_id_r"]).astype(np.int64),
            frame["match_probability"].to_numpy(dtype=np.float64),
        )
    con = result.db_api.duckdb_con
    reader = con.sql(
        # the table's name is Splink's own (__splink__df_predict_…), not input
        f"SELECT unique_id_l, unique_id_r, match_probability FROM {result.physical_name}"  # noqa: S608
    ).to_arrow_reader(PAIRS_BATCH)
    numbered = _read_pairs(reader)
    result.drop_table_from_database_and_remove_from_cache()
    model.drop_pairs(link)
    return order[numbered[0]], order[numbered[1]], numbered[2]


def _read_pairs(reader: Any) -> tuple[Ints, Ints, Floats]:
    """Three columns (two record numbers, a probability) of an Arrow reader as arrays."""
    parts: list[tuple[Ints, Ints, Floats]] = [_no_pairs()]
    for batch in reader:
        parts.append(
            (
                batch.column(0).to_numpy().astype(np.int64),
                batch.column(1).to_numpy().astype(np.int64),
                batch.column(2).to_numpy().astype(np.float64),
            )
        )
    return (
        np.concatenate([a for a, _, _ in parts]),
        np.concatenate([b for _, b, _ in parts]),
        np.concatenate([p for _, _, p in parts]),
    )


def _strongest_first(
    left: Ints, right: Ints, prob: Floats, rank: Ints, decided: set[tuple[int, int]]
) -> Iterator[tuple[int, int, float]]:
    """Pairs by falling probability (ties by record id), those reviewers decided left out."""
    order = np.lexsort((rank[right], rank[left], -prob))
    for a, b, p in zip(
        left[order].tolist(), right[order].tolist(), prob[order].tolist(), strict=True
    ):
        if not decided or (min(a, b), max(a, b)) not in decided:
            yield a, b, p


def _codes(column: pd.Series, empty_is_none: bool = True) -> Ints:
    """Integer codes of a column, NONE where it has no value (or, as the clustering's
    traits read them, an empty text)."""
    found, uniques = pd.factorize(column, use_na_sentinel=True)
    codes: Ints = np.asarray(found, dtype=np.int64)
    if empty_is_none:
        blank = [i for i, u in enumerate(uniques) if u == ""]
        if blank:
            codes[np.isin(codes, blank)] = NONE
    return codes


def trait_codes(frame: pd.DataFrame, statuses: Sequence[str]) -> TraitCodes:
    """Each record's given-name id, sex, year of birth and date of death, which the
    clustering keeps consistent within a cluster (see clusters.py)."""
    year, day = frame["birth_year"], frame["death_day"]
    return TraitCodes(
        given=_codes(frame["given_id"]),
        father=_codes(frame["father_id"]),
        mother=_codes(frame["mother_id"]),
        sex=_codes(frame["sex"]),
        birth_year=year.fillna(0).to_numpy(dtype=np.int64),
        has_year=year.notna().to_numpy(dtype=bool),
        death_day=day.fillna(0).to_numpy(dtype=np.int64),
        has_day=day.notna().to_numpy(dtype=bool),
        status=pd.factorize(pd.Series(list(statuses), dtype=object))[0].astype(np.int64),
    )


def traits(frame: pd.DataFrame, status: Mapping[str, str]) -> dict[str, Traits]:
    """The traits of `trait_codes` as one object per record (for small lists and tests)."""

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
