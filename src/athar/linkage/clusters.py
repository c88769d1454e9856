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
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    left: str
    right: str
    match: bool


def cluster_id(smallest_record_id: str) -> str:
    return "cl-" + hashlib.sha256(smallest_record_id.encode("utf-8")).hexdigest()[:16]


YEAR_SPREAD = 5  # the widest birth-year level the model still counts as "close"
DAY_SPREAD = 60  # likewise for dates; only between records of the same status


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


class _Group:
    """The traits of a cluster so far: the set of names and sexes, the range of years."""

    __slots__ = ("days", "father", "given", "mother", "sex", "years")

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


def _union(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


def _span(a: tuple[int, int] | None, b: tuple[int, int] | None) -> int:
    both = _union(a, b)
    return 0 if both is None else both[1] - both[0]


@dataclass
class Clustering:
    cluster_of: dict[str, str]  # record id → cluster id
    probability: dict[str, float | None]  # record id → the strongest link that joined it
    refused: list[tuple[str, str, float]]  # strong pairs kept apart by a non-match decision


class _Sets:
    def __init__(self, ids: Iterable[str], traits: Mapping[str, Traits]) -> None:
        self.parent = {i: i for i in ids}
        self.apart: dict[str, set[str]] = {}  # root → records it must not join
        self.groups = {i: _Group(t) for i, t in traits.items() if i in self.parent}

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
    sets = _Sets(record_ids, {})
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
        if decided.get(frozenset((a, b))) is False:
            refused.append((a, b, p))
            continue
        if not sets.can_join(a, b):
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
    cluster_of = {rid: cluster_id(smallest[root]) for rid, root in roots.items()}
    return Clustering(cluster_of, probability, refused)
