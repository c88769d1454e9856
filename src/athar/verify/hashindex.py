"""Exact Hamming-distance search over 256-bit hashes, fast at archive scale.

Recycled-footage search must never miss a copy that is within the threshold, so this
is not an approximate index: every answer equals what comparing the query with every
stored hash would give. It must still answer over 10,000,000 hashes in well under 20 ms
on one core, where a full scan cannot (faiss' IndexBinaryFlat took ~23 ms, numpy's
bitwise_count ~140 ms per 1M on this machine; see benchmarks/bench_hashindex.py).

Method: multi-index hashing (Norouzi, Punjani & Fleet, 2012). Each hash is cut into 16
chunks of 16 bits. If two hashes differ in at most *t* bits, then by the pigeonhole
principle at least one chunk differs in at most floor(t / 16) bits, so looking up, for
every chunk, the query's own chunk value and every value within that radius (17 values
per chunk for t <= 31) yields a candidate set that contains every true answer. The
candidates are then checked with a full 256-bit popcount, so no false answer is given.

Each chunk has a table: positions of all hashes sorted by that chunk's value, and where
each of the 65,536 values starts. Hashes added after the tables were built wait in a
small tail that is scanned in full; the tables are rebuilt when the tail grows past
TAIL_LIMIT. Memory: 32 bytes per hash, 8 per id and 64 for the tables (~1 GB at 10M).
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from athar.errors import InputError

HASH_BYTES = 32
CHUNKS = 16  # 16 chunks of 16 bits; see the module docstring for the pigeonhole rule
CHUNK_VALUES = 1 << 16
DEFAULT_MAX_DISTANCE = 31  # PDQ's match threshold
# Up to radius 2 per chunk (thresholds <= 47) the lookups stay cheap: 137 values per
# chunk. Beyond that a full scan is as fast and far simpler.
MAX_RADIUS = 2
# A tail of this many hashes is scanned in ~1 ms; a rebuild of 10M hashes costs a few
# seconds, so rebuilding every TAIL_LIMIT additions costs well under 0.1 ms per hash.
TAIL_LIMIT = 65_536

_MAGIC = b"ATHARHX1"
_HEADER = struct.Struct("<8sQ")

Hashes = npt.NDArray[np.uint8]
Ids = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Hits:
    """Matches of a batch of queries: one row per (query, id), nearest first per query.

    When several stored hashes share an id, the id appears once per query with the
    smallest distance among them.
    """

    query: npt.NDArray[np.int64]  # index of the query row
    ids: Ids
    distances: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.ids.size)

    def for_query(self, row: int) -> list[tuple[int, int]]:
        """(id, distance) pairs of one query row, nearest first."""
        pick = self.query == row
        return list(zip(self.ids[pick].tolist(), self.distances[pick].tolist(), strict=True))


def _masks(radius: int) -> npt.NDArray[np.uint16]:
    """All 16-bit values with at most *radius* bits set (the flips to probe)."""
    values = [0]
    for r in range(1, radius + 1):
        for bits in itertools.combinations(range(16), r):
            values.append(sum(1 << b for b in bits))
    return np.array(values, dtype=np.uint16)


_MASKS = [_masks(r) for r in range(MAX_RADIUS + 1)]


def as_hashes(hashes: Hashes | bytes | list[bytes]) -> Hashes:
    """Hashes as a C-contiguous (N, 32) uint8 array; one hash may be given as 32 bytes."""
    if isinstance(hashes, bytes):
        array = np.frombuffer(hashes, dtype=np.uint8).reshape(-1, HASH_BYTES)
    elif isinstance(hashes, list):
        array = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, HASH_BYTES)
    else:
        array = np.asarray(hashes, dtype=np.uint8)
        if array.ndim == 1:
            array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != HASH_BYTES:
        raise ValueError(f"hashes must be rows of {HASH_BYTES} bytes, got shape {array.shape}")
    return np.ascontiguousarray(array)


def distances(stored: Hashes, query: Hashes) -> npt.NDArray[np.int64]:
    """Hamming distance from one query hash to each stored hash, by full scan."""
    words = stored.view(np.uint64)
    q = as_hashes(query).view(np.uint64)[0]
    total: npt.NDArray[np.int64] = np.bitwise_count(words[:, 0] ^ q[0]).astype(np.int64)
    for k in range(1, HASH_BYTES // 8):
        total += np.bitwise_count(words[:, k] ^ q[k])
    return total


class HashIndex:
    """Exact search: every stored hash within ``max_distance`` of a query, with its id."""

    def __init__(self) -> None:
        self._hashes: Hashes = np.zeros((0, HASH_BYTES), dtype=np.uint8)
        self._ids: Ids = np.zeros(0, dtype=np.int64)
        self._built = 0  # rows of _hashes covered by the chunk tables
        self._order: npt.NDArray[np.uint32] = np.zeros((CHUNKS, 0), dtype=np.uint32)
        self._starts: npt.NDArray[np.int64] = np.zeros((CHUNKS, CHUNK_VALUES + 1), np.int64)
        self._size = 0  # rows in use; _hashes may have spare capacity beyond it

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Memory held by the index's arrays."""
        return int(self._hashes.nbytes + self._ids.nbytes + self._order.nbytes)

    def add(self, hashes: Hashes | bytes | list[bytes], ids: npt.ArrayLike) -> None:
        """Add hashes with their ids (int64; several hashes may share an id)."""
        rows = as_hashes(hashes)
        id_array = np.asarray(ids, dtype=np.int64).reshape(-1)
        if id_array.size == 1 and rows.shape[0] > 1:
            id_array = np.full(rows.shape[0], id_array[0], dtype=np.int64)
        if id_array.size != rows.shape[0]:
            raise ValueError(f"{rows.shape[0]} hashes but {id_array.size} ids")
        need = self._size + rows.shape[0]
        if need > self._hashes.shape[0]:
            capacity = max(need, 2 * self._hashes.shape[0], 1024)
            grown = np.zeros((capacity, HASH_BYTES), dtype=np.uint8)
            grown[: self._size] = self._hashes[: self._size]
            grown_ids = np.zeros(capacity, dtype=np.int64)
            grown_ids[: self._size] = self._ids[: self._size]
            self._hashes, self._ids = grown, grown_ids
        self._hashes[self._size : need] = rows
        self._ids[self._size : need] = id_array
        self._size = need
        if self._size - self._built > TAIL_LIMIT:
            self.build()

    def build(self) -> None:
        """Index every hash added so far (done by itself as the tail grows)."""
        n = self._size
        # one pass to make each chunk a contiguous row, then a radix sort per chunk
        columns = np.ascontiguousarray(self._hashes[:n].view(np.uint16).T)  # (16, n)
        order = np.empty((CHUNKS, n), dtype=np.uint32)
        starts = np.empty((CHUNKS, CHUNK_VALUES + 1), dtype=np.int64)
        for j in range(CHUNKS):
            column = columns[j]
            order[j] = np.argsort(column, kind="stable")
            starts[j, 0] = 0
            np.cumsum(np.bincount(column, minlength=CHUNK_VALUES), out=starts[j, 1:])
        self._order, self._starts, self._built = order, starts, n

    def search(
        self, query: Hashes | bytes, max_distance: int = DEFAULT_MAX_DISTANCE
    ) -> list[tuple[int, int]]:
        """(id, distance) of every stored hash within *max_distance* of one hash, nearest
        first (ties by id)."""
        return self.search_many(query, max_distance).for_query(0)

    def search_many(
        self, queries: Hashes | bytes | list[bytes], max_distance: int = DEFAULT_MAX_DISTANCE
    ) -> Hits:
        """All matches of each query row (for example the 8 dihedral variants)."""
        rows = as_hashes(queries)
        if max_distance < 0:
            raise ValueError("max_distance must be >= 0")
        parts = [self._search_one(rows[i : i + 1], max_distance) for i in range(rows.shape[0])]
        query = np.concatenate(
            [np.full(p[0].size, i, dtype=np.int64) for i, p in enumerate(parts)]
            or [np.zeros(0, dtype=np.int64)]
        )
        ids = np.concatenate([p[0] for p in parts] or [np.zeros(0, dtype=np.int64)])
        dist = np.concatenate([p[1] for p in parts] or [np.zeros(0, dtype=np.int64)])
        return Hits(query, ids, dist)

    def search_any(
        self, queries: Hashes | bytes | list[bytes], max_distance: int = DEFAULT_MAX_DISTANCE
    ) -> Hits:
        """Matches of any of the query rows, one per id with its smallest distance; the
        ``query`` field tells which row gave it (e.g. which rotation matched)."""
        hits = self.search_many(queries, max_distance)
        order = np.lexsort((hits.query, hits.distances, hits.ids))
        ids = hits.ids[order]
        first = np.ones(ids.size, dtype=bool)
        first[1:] = ids[1:] != ids[:-1]
        pick = order[first]
        final = np.lexsort((hits.ids[pick], hits.distances[pick]))
        pick = pick[final]
        return Hits(hits.query[pick], hits.ids[pick], hits.distances[pick])

    def _search_one(self, query: Hashes, max_distance: int) -> tuple[Ids, npt.NDArray[np.int64]]:
        """Matches of one (1, 32) query: ids and distances, nearest first, one per id."""
        radius = max_distance // CHUNKS
        if radius > MAX_RADIUS:
            positions = np.arange(self._size)
            found = distances(self._hashes[: self._size], query)
        else:
            positions, found = self._candidates(query, radius)
            tail = distances(self._hashes[self._built : self._size], query)
            positions = np.concatenate([positions, np.arange(self._built, self._size)])
            found = np.concatenate([found, tail])
        keep = found <= max_distance
        positions, found = positions[keep], found[keep]
        ids = self._ids[positions]
        # one row per id: nearest first, then by id
        order = np.lexsort((ids, found))
        ids, found = ids[order], found[order]
        _, first = np.unique(ids, return_index=True)
        first.sort()
        return ids[first], found[first].astype(np.int64)

    def _candidates(
        self, query: Hashes, radius: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Positions of built hashes sharing a chunk within *radius* with the query, and
        their exact distances (positions may repeat)."""
        n = self._built
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        chunks = query.view(np.uint16)[0]  # (16,)
        keys = (chunks[:, None] ^ _MASKS[radius][None, :]).astype(np.int64)  # (16, P)
        rows = np.arange(CHUNKS, dtype=np.int64)[:, None]
        lo = self._starts[rows, keys].ravel()
        hi = self._starts[rows, keys + 1].ravel()
        lengths = hi - lo
        total = int(lengths.sum())
        if total == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        base = (lo + np.repeat(np.arange(CHUNKS, dtype=np.int64) * n, keys.shape[1])).ravel()
        ends = np.cumsum(lengths)
        offsets = np.arange(total, dtype=np.int64) - np.repeat(ends - lengths, lengths)
        flat = self._order.reshape(-1)
        positions = flat[np.repeat(base, lengths) + offsets].astype(np.int64)
        words = self._hashes.view(np.uint64)
        q = query.view(np.uint64)[0]
        cand = words[positions]
        found = np.bitwise_count(cand[:, 0] ^ q[0]).astype(np.int64)
        for k in range(1, HASH_BYTES // 8):
            found += np.bitwise_count(cand[:, k] ^ q[k])
        return positions, found

    def to_bytes(self) -> bytes:
        """The hashes and ids as bytes (the tables are rebuilt on load, so a damaged or
        forged file cannot make the index give wrong answers, only fail to load)."""
        n = self._size
        return b"".join(
            [
                _HEADER.pack(_MAGIC, n),
                self._hashes[:n].tobytes(),
                self._ids[:n].astype("<i8").tobytes(),
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> HashIndex:
        """Load what ``to_bytes`` wrote; damaged data raises ``InputError``."""
        view = memoryview(data)
        if view.nbytes < _HEADER.size:
            raise _damaged()
        magic, n = _HEADER.unpack(view[: _HEADER.size])
        if magic != _MAGIC or view.nbytes != _HEADER.size + n * (HASH_BYTES + 8):
            raise _damaged()
        start = _HEADER.size
        hashes = np.frombuffer(view, dtype=np.uint8, count=n * HASH_BYTES, offset=start)
        ids = np.frombuffer(view, dtype="<i8", count=n, offset=start + n * HASH_BYTES)
        index = cls()
        if n:
            index._hashes = hashes.reshape(n, HASH_BYTES).copy()
            index._ids = ids.astype(np.int64)
            index._size = int(n)
            index.build()
        return index


def _damaged() -> InputError:
    return InputError("the hash index data is damaged or of an unknown format")
