"""Scored pairs into clusters of records of one person, respecting reviewers.

Pairs are joined strongest first (union-find). A reviewer's "match" joins two records
whatever the score; a reviewer's "non-match" is a constraint: no join may put those two
records in one cluster, so a chain of strong-but-wrong links cannot pull them together
again. A cluster's id is a digest of its smallest record id, so the same people get the
same ids in every re-run, on every machine, whatever order the rows came in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    left: str
    right: str
    match: bool


def cluster_id(smallest_record_id: str) -> str:
    return "cl-" + hashlib.sha256(smallest_record_id.encode("utf-8")).hexdigest()[:16]


@dataclass
class Clustering:
    cluster_of: dict[str, str]  # record id → cluster id
    probability: dict[str, float | None]  # record id → the strongest link that joined it
    refused: list[tuple[str, str, float]]  # strong pairs kept apart by a non-match decision


class _Sets:
    def __init__(self, ids: Iterable[str]) -> None:
        self.parent = {i: i for i in ids}
        self.apart: dict[str, set[str]] = {}  # root → records it must not join

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
        small, big = sorted((ra, rb), key=lambda r: len(self.apart.get(r, ())))
        return not any(self.find(x) == big for x in self.apart.get(small, ()))

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if ra > rb:
            ra, rb = rb, ra
        self.parent[rb] = ra
        moved = self.apart.pop(rb, None)
        if moved:
            self.apart.setdefault(ra, set()).update(moved)


def cluster(
    record_ids: Sequence[str],
    pairs: Iterable[tuple[str, str, float]],
    threshold: float,
    decisions: Iterable[Decision] = (),
) -> Clustering:
    """Clusters of *record_ids* from scored pairs at or above *threshold*, with the
    reviewers' *decisions* applied as described above. Decisions about records that
    are not in this run are ignored."""
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
