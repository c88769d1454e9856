"""Scored pairs into clusters of records of one person, respecting reviewers.

Pairs are joined strongest first (union-find). A reviewer's "match" joins two records
whatever the score; a reviewer's "non-match" is a constraint: no join may put those two
records in one cluster, so a chain of strong-but-wrong links cannot pull them together
again. Records also carry *traits* that one person cannot have two of (two different
known given names, both sexes, years of birth or dates of death too far apart): a join
that would put such records in one cluster is refused, so a chain of namesakes (محمد
الأحمد born 1980 → محمد الأحمد with no year → محمد الأحمد born 1995) stops at the
record that gives it away. A cluster's id is a digest of its smallest record id, so
the same people get the same ids in every re-run, on every machine, whatever order the
rows came in.

A million records give millions of strong pairs, so the work is done on arrays: records
are numbered, traits are integer codes, pairs are sorted with numpy, and a pair whose
two records already disagree (two given names, years of birth 20 apart) is refused
without entering the union-find loop, since its clusters could only disagree more. The
loop that remains is the sequential part (each join changes what the next pair may do).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Decision:
    left: str
    right: str
    match: bool


def cluster_id(smallest_record_id: str) -> str:
    return "cl-" + hashlib.sha256(smallest_record_id.encode("utf-8")).hexdigest()[:16]


YEAR_SPREAD = 5  # the widest birth-year level the model still counts as "close"
DAY_SPREAD = 60  # likewise for dates; only between records of the same status

NONE = -1  # no value, in the integer codes of `TraitCodes`
MANY = -2  # a cluster holding two different values (only a reviewer's match does that)

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Traits:
    """What one record says about its person that every record of that person shares."""

    given: str | None = None  # the given name's id in the variant table
    sex: str | None = None
    birth_year: int | None = None
    death_day: int | None = None
    father: str | None = None  # the father's and the mother's given-name ids
    mother: str | None = None
    status: str = ""  # a detention and a death of one person are years apart


@dataclass
class TraitCodes:
    """`Traits` of every record as integer arrays (record number → code, NONE when the
    record has no value): the name ids, sex and status are factorised, years and days
    kept with a mask. Built from a frame without a Python object per record."""

    given: Ints
    father: Ints
    mother: Ints
    sex: Ints
    birth_year: Ints
    has_year: npt.NDArray[np.bool_]
    death_day: Ints
    has_day: npt.NDArray[np.bool_]
    status: Ints

    @classmethod
    def from_traits(cls, record_ids: Sequence[str], traits: Mapping[str, Traits]) -> TraitCodes:
        rows = [traits.get(rid, Traits()) for rid in record_ids]

        def codes(values: list[Any]) -> Ints:
            return factorise([v if v else None for v in values])

        years = [t.birth_year for t in rows]
        days = [t.death_day for t in rows]
        return cls(
            codes([t.given for t in rows]),
            codes([t.father for t in rows]),
            codes([t.mother for t in rows]),
            codes([t.sex for t in rows]),
            np.array([0 if y is None else y for y in years], dtype=np.int64),
            np.array([y is not None for y in years], dtype=bool),
            np.array([0 if d is None else d for d in days], dtype=np.int64),
            np.array([d is not None for d in days], dtype=bool),
            factorise([t.status for t in rows]),
        )


def factorise(values: Sequence[Any]) -> Ints:
    """Equal values get equal codes ≥ 0, None gets NONE."""
    seen: dict[Any, int] = {}
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        out[i] = NONE if v is None else seen.setdefault(v, len(seen))
    return out


@dataclass
class Clustering:
    cluster_of: dict[str, str]  # record id → cluster id
    probability: dict[str, float | None]  # record id → the strongest link that joined it
    refused: list[tuple[str, str, float]]  # strong pairs kept apart by a non-match decision


def cluster(
    record_ids: Sequence[str],
    pairs: Iterable[tuple[str, str, float]],
    threshold: float,
    decisions: Iterable[Decision] = (),
    traits: Mapping[str, Traits] | None = None,
) -> Clustering:
    """Clusters of *record_ids* from scored pairs at or above *threshold*, with the
    reviewers' *decisions* applied as described above. Decisions about records that
    are not in this run are ignored. Without *traits* only the decisions constrain.
    A reviewer's match joins records whatever their traits."""
    ids = list(record_ids)
    number = {rid: i for i, rid in enumerate(ids)}
    strong = [(a, b, p) for a, b, p in pairs if p >= threshold]
    left = np.array([number[a] for a, _, _ in strong], dtype=np.int64)
    right = np.array([number[b] for _, b, _ in strong], dtype=np.int64)
    prob = np.array([p for _, _, p in strong], dtype=np.float64)
    codes = TraitCodes.from_traits(ids, traits) if traits else None
    return cluster_numbered(ids, left, right, prob, threshold, decisions, codes)


def string_ranks(ids: Sequence[str]) -> Ints:
    """Each record's place in the sorted record ids: ties between equal probabilities
    are broken by the ids, as text, so the order never depends on the rows' order."""
    order = sorted(range(len(ids)), key=ids.__getitem__)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.array(order, dtype=np.int64)] = np.arange(len(ids), dtype=np.int64)
    return rank


def cluster_numbered(
    ids: Sequence[str],
    left: Ints,
    right: Ints,
    prob: Floats,
    threshold: float,
    decisions: Iterable[Decision] = (),
    traits: TraitCodes | None = None,
    rank: Ints | None = None,
) -> Clustering:
    """`cluster` on numbered records: pair k joins records left[k] and right[k] (numbers
    into *ids*) with probability prob[k]. *rank* (`string_ranks`) may be given when the
    caller has it."""
    n = len(ids)
    rank = string_ranks(ids) if rank is None else rank
    keep = prob >= threshold
    left, right, prob = left[keep], right[keep], prob[keep]
    order = np.lexsort((rank[right], rank[left], -prob))
    left, right, prob = left[order], right[order], prob[order]
    parent = list(range(n))
    size = [1] * n

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    # Reviewers' decisions: non-matches become constraints, matches join first.
    number = {rid: i for i, rid in enumerate(ids)}
    decided: dict[tuple[int, int], bool] = {}
    for d in decisions:
        a, b = number.get(d.left), number.get(d.right)
        if a is not None and b is not None and a != b:
            decided[(a, b) if rank[a] < rank[b] else (b, a)] = d.match
    apart: dict[int, set[int]] = {}
    for (a, b), match in decided.items():
        if not match:
            apart.setdefault(a, set()).add(b)
            apart.setdefault(b, set()).add(a)

    def apart_ok(ra: int, rb: int) -> bool:
        sa, sb = apart.get(ra, ()), apart.get(rb, ())
        small, big = (ra, rb) if len(sa) <= len(sb) else (rb, ra)
        return not any(find(x) == big for x in apart.get(small, ()))

    def union(ra: int, rb: int) -> int:
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] += size[rb]
        moved = apart.pop(rb, None)
        if moved:
            apart.setdefault(ra, set()).update(moved)
        return ra

    forced = np.zeros(n, dtype=bool)
    for (a, b), match in decided.items():
        if match:
            ra, rb = find(a), find(b)
            if ra == rb or apart_ok(ra, rb):
                if ra != rb:
                    union(ra, rb)
                forced[a] = forced[b] = True

    # Pairs refused without the loop: decided non-matches, and (when no reviewer's match
    # put disagreeing records together) pairs whose own two records disagree.
    refused = np.zeros(len(prob), dtype=bool)
    non_match = [k for k, m in decided.items() if not m]
    if non_match:
        lo = np.where(rank[left] < rank[right], left, right)
        hi = np.where(rank[left] < rank[right], right, left)
        keys = np.array([a * n + b for a, b in non_match], dtype=np.int64)
        refused |= np.isin(lo * n + hi, keys)
    if traits is not None and not forced.any():
        refused |= _disagree(traits, left, right)

    joined = any(parent[i] != i for i in range(n)) if decided else False
    groups = _Groups(traits, n, find, joined) if traits is not None else None
    lefts, rights = left.tolist(), right.tolist()
    kept_apart: list[int] = []
    for k in np.flatnonzero(~refused).tolist():
        ra, rb = find(lefts[k]), find(rights[k])
        if ra == rb:
            continue
        if (groups is not None and not groups.fits(ra, rb)) or (apart and not apart_ok(ra, rb)):
            kept_apart.append(k)
            continue
        root = union(ra, rb)
        if groups is not None:
            groups.absorb(root, rb if root == ra else ra)

    refused[np.array(kept_apart, dtype=np.int64)] = True
    accepted = ~refused
    best = np.full(n, -np.inf)
    np.maximum.at(best, left[accepted], prob[accepted])
    np.maximum.at(best, right[accepted], prob[accepted])
    best[forced] = np.maximum(best[forced], 1.0)
    probability: dict[str, float | None] = {
        rid: (None if p == -np.inf else p) for rid, p in zip(ids, best.tolist(), strict=True)
    }
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    smallest = np.full(n, n, dtype=np.int64)
    np.minimum.at(smallest, roots, rank)
    by_rank = np.empty(n, dtype=np.int64)
    by_rank[rank] = np.arange(n, dtype=np.int64)
    names = {int(r): cluster_id(ids[by_rank[smallest[r]]]) for r in np.unique(roots).tolist()}
    cluster_of = {rid: names[r] for rid, r in zip(ids, roots.tolist(), strict=True)}
    out = [
        (ids[a], ids[b], p)
        for a, b, p in zip(
            left[refused].tolist(), right[refused].tolist(), prob[refused].tolist(), strict=True
        )
    ]
    return Clustering(cluster_of, probability, out)


def _disagree(t: TraitCodes, a: Ints, b: Ints) -> npt.NDArray[np.bool_]:
    """Pairs whose two records could never be in one cluster: every cluster holding
    them would hold both values."""
    out = np.zeros(len(a), dtype=bool)
    for codes in (t.given, t.father, t.mother, t.sex):
        ca, cb = codes[a], codes[b]
        out |= (ca >= 0) & (cb >= 0) & (ca != cb)
    out |= t.has_year[a] & t.has_year[b] & (np.abs(t.birth_year[a] - t.birth_year[b]) > YEAR_SPREAD)
    out |= (
        t.has_day[a]
        & t.has_day[b]
        & (t.status[a] == t.status[b])
        & (np.abs(t.death_day[a] - t.death_day[b]) > DAY_SPREAD)
    )
    return out


def _merge(x: int, y: int) -> int:
    """The code of a cluster's value after a join: one value, none, or MANY."""
    if x == y or y == NONE:
        return x
    if x == NONE:
        return y
    return MANY


class _Groups:
    """The traits of each cluster so far, kept at its root: a code per name and sex
    (NONE, one value, or MANY), the range of years, the range of days per status."""

    def __init__(self, t: TraitCodes, n: int, find: Any, joined: bool) -> None:
        year, day, status = t.birth_year.tolist(), t.death_day.tolist(), t.status.tolist()
        self.given, self.father = t.given.tolist(), t.father.tolist()
        self.mother, self.sex = t.mother.tolist(), t.sex.tolist()
        self.years: list[tuple[int, int] | None] = [
            (y, y) if has else None for y, has in zip(year, t.has_year.tolist(), strict=True)
        ]
        self.days: list[dict[int, tuple[int, int]] | None] = [
            {s: (d, d)} if has else None
            for d, s, has in zip(day, status, t.has_day.tolist(), strict=True)
        ]
        if joined:  # reviewers' matches joined some records before any pair
            for i in range(n):
                root = find(i)
                if root != i:
                    self.absorb(root, i)

    def fits(self, ra: int, rb: int) -> bool:
        """`ra`'s cluster may take in `rb`'s (the days are checked for the statuses
        `ra`'s cluster has, as before)."""
        for codes in (self.given, self.father, self.mother, self.sex):
            x, y = codes[ra], codes[rb]
            if x == MANY or y == MANY or (x != y and x != NONE and y != NONE):
                return False
        if _span(self.years[ra], self.years[rb]) > YEAR_SPREAD:
            return False
        da = self.days[ra]
        if da:
            db = self.days[rb] or {}
            for status, span in da.items():
                if _span(span, db.get(status)) > DAY_SPREAD:
                    return False
        return True

    def absorb(self, root: int, other: int) -> None:
        for codes in (self.given, self.father, self.mother, self.sex):
            codes[root] = _merge(codes[root], codes[other])
        self.years[root] = _union(self.years[root], self.years[other])
        moved = self.days[other]
        if moved:
            days = self.days[root]
            if days is None:
                self.days[root] = dict(moved)
            else:
                for status, (low, high) in moved.items():
                    old = days.get(status, (low, high))
                    days[status] = (min(old[0], low), max(old[1], high))
        self.days[other] = None


def _union(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


def _span(a: tuple[int, int] | None, b: tuple[int, int] | None) -> int:
    both = _union(a, b)
    return 0 if both is None else both[1] - both[0]
