"""The exact Hamming index: same answers as a full scan, on random and clustered data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from athar.errors import InputError
from athar.verify import hashindex
from athar.verify.hashindex import HashIndex


def brute(stored: np.ndarray, ids: np.ndarray, query: np.ndarray, t: int) -> dict[int, int]:
    bits = np.unpackbits(stored ^ query[None, :], axis=1).sum(axis=1)
    out: dict[int, int] = {}
    for i, d in zip(ids.tolist(), bits.tolist(), strict=True):
        if d <= t and (i not in out or d < out[i]):
            out[i] = d
    return out


def flip(h: np.ndarray, bits: np.ndarray) -> np.ndarray:
    out = h.copy()
    for b in bits:
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


def clustered(rng: np.random.Generator, n: int, centres: int) -> np.ndarray:
    """Near-duplicates around a few centres, as recycled footage produces."""
    base = rng.integers(0, 256, size=(centres, 32), dtype=np.uint8)
    rows = []
    for _ in range(n):
        c = base[rng.integers(centres)]
        rows.append(flip(c, rng.choice(256, size=int(rng.integers(0, 48)), replace=False)))
    return np.stack(rows) if rows else np.zeros((0, 32), dtype=np.uint8)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 600),
    centres=st.integers(1, 6),
    t=st.sampled_from([0, 5, 15, 31, 40, 47, 70]),
    built=st.booleans(),
)
def test_equals_brute_force(seed: int, n: int, centres: int, t: int, built: bool) -> None:
    rng = np.random.default_rng(seed)
    stored = np.concatenate(
        [
            rng.integers(0, 256, size=(n // 2, 32), dtype=np.uint8),
            clustered(rng, n - n // 2, centres),
        ]
    )
    ids = rng.integers(0, max(1, n // 3) + 1, size=stored.shape[0]).astype(np.int64)
    index = HashIndex()
    if n:
        half = n // 2
        index.add(stored[:half], ids[:half])
        if built:
            index.build()
        index.add(stored[half:], ids[half:])  # some in the tables, some in the tail
    queries = [stored[int(rng.integers(n))] if n else rng.integers(0, 256, 32, dtype=np.uint8)]
    queries.append(flip(queries[0], rng.choice(256, size=int(rng.integers(0, 40)), replace=False)))
    queries.append(rng.integers(0, 256, size=32, dtype=np.uint8))
    for q in queries:
        want = brute(stored, ids, q, t)
        got = index.search(q, t)
        assert dict(got) == want
        assert [d for _, d in got] == sorted(d for _, d in got)


def test_tables_rebuild_after_tail_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashindex, "TAIL_LIMIT", 50)
    rng = np.random.default_rng(5)
    index = HashIndex()
    stored = clustered(rng, 400, 3)
    for i in range(0, 400, 7):
        index.add(stored[i : i + 7], np.arange(i, min(i + 7, 400)))
    assert len(index) == 400
    assert index._built >= 350  # the tables were rebuilt along the way
    q = stored[123]
    assert dict(index.search(q)) == brute(stored, np.arange(400), q, 31)


def test_search_any_takes_best_variant_and_reports_it() -> None:
    rng = np.random.default_rng(1)
    stored = rng.integers(0, 256, size=(100, 32), dtype=np.uint8)
    index = HashIndex()
    index.add(stored, np.arange(100))
    variants = np.stack([rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(7)] + [stored[42]])
    hits = index.search_any(variants)
    assert hits.ids.tolist() == [42]
    assert hits.query.tolist() == [7]
    assert hits.distances.tolist() == [0]


def test_batch_queries_match_single_queries() -> None:
    rng = np.random.default_rng(2)
    stored = clustered(rng, 300, 4)
    index = HashIndex()
    index.add(stored, np.arange(300))
    queries = stored[:20]
    hits = index.search_many(queries, 31)
    for row in range(20):
        assert hits.for_query(row) == index.search(queries[row], 31)


def test_round_trip_and_damage() -> None:
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 256, size=(1000, 32), dtype=np.uint8)
    ids = rng.integers(-(2**62), 2**62, size=1000)
    index = HashIndex()
    index.add(stored, ids)
    data = index.to_bytes()
    again = HashIndex.from_bytes(data)
    assert len(again) == 1000
    assert again.search(stored[10]) == index.search(stored[10])
    assert again.search(stored[10])[0] == (int(ids[10]), 0)
    for bad in (data[:-1], data + b"\0", b"NOTANIDX" + data[8:], b""):
        with pytest.raises(InputError):
            HashIndex.from_bytes(bad)
    assert len(HashIndex.from_bytes(HashIndex().to_bytes())) == 0


def test_bad_shapes_are_programming_errors() -> None:
    index = HashIndex()
    with pytest.raises(ValueError):
        index.add(np.zeros((2, 31), dtype=np.uint8), [1, 2])
    with pytest.raises(ValueError):
        index.add(np.zeros((2, 32), dtype=np.uint8), [1, 2, 3])
    index.add(np.zeros((3, 32), dtype=np.uint8), 9)  # one id for all rows
    assert index.search(bytes(32)) == [(9, 0)]
