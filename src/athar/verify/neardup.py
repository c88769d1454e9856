"""The matching rule for pictures: which hash pairs count as "the same picture".

A picture is stored as its plain PDQ hash, its Lanczos-reduced hash, the hash of its
content without bars, ARCHIVE_REGIONS and the stored lattice; it is looked up with the 8
rotations/flips of the whole and the core, the finer PROBE_REGIONS and the probe lattice
(see ``phash``). A pair of hashes is evidence only when the two describe parts of the
pictures that can coincide:

* whole or core against whole or core (any rotation/flip): plain PDQ, bars removed;
* whole or core against a region: one picture is a crop of the other;
* region against region of the same family (centre with centre, left with left,
  lattice with lattice): both were cropped, by different amounts.

Every accepted pair must be within PDQ_MATCH_THRESHOLD (31): regions are PDQ hashes of
real picture content, and in two runs of benchmarks/bench_neardup.py no accepted pair
between a query and an item made from another photograph came within 59 bits (1,072,260
and 1,608,390 query x item pairs, about 29 stored and 125 probe hashes per picture), so
regions need no stricter threshold than whole pictures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from athar.verify.hashindex import HashIndex
from athar.verify.phash import PDQ_MATCH_THRESHOLD, ImageHashes, Kind

# Stored ids pack the caller's item id with the hash's kind, so one HashIndex holds all
# kinds and a hit says which part of the stored picture matched.
KIND_BITS = 6
MAX_ITEM_ID = (1 << (63 - KIND_BITS)) - 1


def _family(kind: int) -> str:
    if not Kind(kind).is_region:
        return "W"  # whole or core
    letter = Kind(kind).name[0]
    return "G" if letter == "P" else letter  # lattice probes against stored lattice


def compatible(query_kind: int, stored_kind: int) -> bool:
    """Whether a probe of *query_kind* may be compared with a stored *stored_kind*."""
    q, s = _family(query_kind), _family(stored_kind)
    return q == "W" or s == "W" or q == s


def _compatibility_table() -> npt.NDArray[np.bool_]:
    # stored kinds fit in KIND_BITS; probe-only kinds (the lattice's P_*) go up to 255
    table = np.zeros((256, 1 << KIND_BITS), dtype=bool)
    for q in Kind:
        for s in Kind:
            if s < 1 << KIND_BITS:
                table[q, s] = compatible(q, s)
    return table


_COMPATIBLE = _compatibility_table()
_IS_REGION = np.zeros(256, dtype=bool)
_IS_REGION[[int(k) for k in Kind if k.is_region]] = True


@dataclass(frozen=True)
class Match:
    """One stored picture found for a query, by its closest accepted hash pair."""

    item_id: int
    distance: int
    query_kind: Kind
    stored_kind: Kind

    @property
    def via_region(self) -> bool:
        """True when only a crop relation explains the match (a weaker kind of evidence,
        worth a human look: one picture contains part of the other)."""
        return self.query_kind.is_region or self.stored_kind.is_region


class MediaIndex:
    """Pictures (and video frames) by item id, searchable with the matching rule."""

    def __init__(self, index: HashIndex | None = None) -> None:
        self.index = index if index is not None else HashIndex()

    def __len__(self) -> int:
        return len(self.index)

    def add(self, item_id: int, hashes: ImageHashes) -> None:
        """Store a picture's hashes under *item_id* (0 <= id <= MAX_ITEM_ID)."""
        if not 0 <= item_id <= MAX_ITEM_ID:
            raise ValueError(f"item id must be in 0..{MAX_ITEM_ID}")
        ids = (np.int64(item_id) << KIND_BITS) | hashes.stored_kinds.astype(np.int64)
        self.index.add(hashes.stored_hashes, ids)

    def search(self, hashes: ImageHashes, max_distance: int = PDQ_MATCH_THRESHOLD) -> list[Match]:
        """Stored pictures that match, one entry per item: whole-picture matches first,
        then crop/region matches, each nearest first."""
        probes, kinds = hashes.probes()
        return matches_from_hits(self.index, probes, kinds, max_distance)

    def to_bytes(self) -> bytes:
        return self.index.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> MediaIndex:
        return cls(HashIndex.from_bytes(data))


def matches_from_hits(
    index: HashIndex,
    probes: npt.NDArray[np.uint8],
    kinds: npt.NDArray[np.uint8],
    max_distance: int,
) -> list[Match]:
    """Search *index* with every probe and keep the best accepted pair per item."""
    hits = index.search_many(probes, max_distance)
    if not len(hits):
        return []
    query_kind = kinds[hits.query].astype(np.int64)
    stored_kind = hits.ids & ((1 << KIND_BITS) - 1)
    ok = _COMPATIBLE[query_kind, stored_kind]
    return _best_per_item(
        hits.ids[ok] >> KIND_BITS, hits.distances[ok], query_kind[ok], stored_kind[ok]
    )


def _best_per_item(
    items: npt.NDArray[np.int64],
    dist: npt.NDArray[np.int64],
    query_kind: npt.NDArray[np.int64],
    stored_kind: npt.NDArray[np.int64],
) -> list[Match]:
    # whole-picture evidence first (it is the stronger claim), then the smallest distance
    region = _IS_REGION[query_kind] | _IS_REGION[stored_kind]
    order = np.lexsort((dist, region, items))
    seen: set[int] = set()
    out: list[Match] = []
    for i in order.tolist():
        item = int(items[i])
        if item in seen:
            continue
        seen.add(item)
        out.append(Match(item, int(dist[i]), Kind(int(query_kind[i])), Kind(int(stored_kind[i]))))
    out.sort(key=lambda m: (m.via_region, m.distance, m.item_id))
    return out


def match_pair(
    query: ImageHashes, stored: ImageHashes, max_distance: int = PDQ_MATCH_THRESHOLD
) -> Match | None:
    """The rule applied to two pictures directly (no index): the best accepted pair,
    or None. ``item_id`` is 0."""
    probes, kinds = query.probes()
    q = probes.view(np.uint64)  # (P, 4)
    s = stored.stored_hashes.view(np.uint64)  # (S, 4)
    dist = np.bitwise_count(q[:, None, :] ^ s[None, :, :]).sum(axis=2).astype(np.int64)
    ok = _COMPATIBLE[kinds.astype(np.int64)[:, None], stored.stored_kinds.astype(np.int64)[None]]
    dist = np.where(ok, dist, 1 << 20)
    qi, si = np.nonzero(dist <= max_distance)
    if qi.size == 0:
        return None
    found = _best_per_item(
        np.zeros(qi.size, dtype=np.int64),
        dist[qi, si],
        kinds[qi].astype(np.int64),
        stored.stored_kinds[si].astype(np.int64),
    )
    return found[0]
