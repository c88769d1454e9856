"""RFC 6962 / 9162 Merkle maths: reference vectors, then properties on random trees."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from athar.vault import merkle

# The RFC 6962 test leaves and roots used by Certificate Transparency implementations
# (transparency-dev/merkle, proof/verify_test.go).
LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index 1-based, tree size, path)
INCLUSION = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        2,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest()


def test_reference_roots() -> None:
    for n, want in enumerate(ROOTS, start=1):
        assert merkle.root(LEAVES[:n]).hex() == want


def test_reference_inclusion_paths_generated_and_verified() -> None:
    for leaf, size, path_hex in INCLUSION:
        path = [bytes.fromhex(h) for h in path_hex]
        assert merkle.inclusion_path(LEAVES[:size], leaf - 1) == path
        root = bytes.fromhex(ROOTS[size - 1])
        assert merkle.verify_inclusion(LEAVES[leaf - 1], leaf - 1, size, path, root)


def test_reference_consistency_paths_generated_and_verified() -> None:
    for old, new, path_hex in CONSISTENCY:
        path = [bytes.fromhex(h) for h in path_hex]
        assert merkle.consistency_path(LEAVES[:new], old) == path
        assert merkle.verify_consistency(
            old, new, bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1]), path
        )


def test_reference_inclusion_rejects_corruptions() -> None:
    for leaf, size, path_hex in INCLUSION:
        path = [bytes.fromhex(h) for h in path_hex]
        root = bytes.fromhex(ROOTS[size - 1])
        entry, i = LEAVES[leaf - 1], leaf - 1
        assert not merkle.verify_inclusion(entry, i - 1, size, path, root)
        assert not merkle.verify_inclusion(entry, i + 1, size, path, root)
        assert not merkle.verify_inclusion(entry, i, size * 2, path, root)
        assert not merkle.verify_inclusion(entry, i, size // 2, path, root)
        assert not merkle.verify_inclusion(b"WrongLeaf", i, size, path, root)
        assert not merkle.verify_inclusion(entry, i, size, path, merkle.EMPTY_ROOT)
        assert not merkle.verify_inclusion(entry, i, size, [*path, root], root)
        assert not merkle.verify_inclusion(entry, i, size, [root, *path], root)
        assert not merkle.verify_inclusion(entry, i, size, [*path, b""], root)
        for k in range(len(path)):
            bad = list(path)
            bad[k] = bytes([bad[k][0] ^ 8]) + bad[k][1:]
            assert not merkle.verify_inclusion(entry, i, size, bad, root)
        if path:
            assert not merkle.verify_inclusion(entry, i, size, path[:-1], root)


def test_reference_consistency_rejects_corruptions() -> None:
    for old, new, path_hex in CONSISTENCY:
        path = [bytes.fromhex(h) for h in path_hex]
        r1, r2 = bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1])
        assert not merkle.verify_consistency(old - 1, new, r1, r2, path)
        assert not merkle.verify_consistency(old + 1, new, r1, r2, path)
        assert not merkle.verify_consistency(old, new * 2, r1, r2, path)
        assert not merkle.verify_consistency(old, new, r2, r1, path)
        assert not merkle.verify_consistency(old, new, r1, r2, [])
        assert not merkle.verify_consistency(old, new, r1, r2, [*path, r1])
        assert not merkle.verify_consistency(old, new, r1, r2, [r2, *path])
        assert not merkle.verify_consistency(old, new, r1, r2, path[:-1])
        for k in range(len(path)):
            bad = list(path)
            bad[k] = bytes([bad[k][0] ^ 16]) + bad[k][1:]
            assert not merkle.verify_consistency(old, new, r1, r2, bad)


def test_consistency_edge_cases() -> None:
    r = merkle.root(LEAVES[:3])
    assert merkle.verify_consistency(3, 3, r, r, [])
    assert not merkle.verify_consistency(3, 3, r, merkle.EMPTY_ROOT, [])
    assert merkle.verify_consistency(0, 3, merkle.EMPTY_ROOT, r, [])
    assert not merkle.verify_consistency(4, 3, r, r, [])
    assert not merkle.verify_consistency(3, 3, r, r, [r])


entries_st = st.lists(st.binary(max_size=12), min_size=1, max_size=130)


@settings(max_examples=150, deadline=None)
@given(entries=entries_st, data=st.data())
def test_every_inclusion_proof_verifies_and_binds_index_and_entry(entries, data) -> None:
    n = len(entries)
    index = data.draw(st.integers(0, n - 1))
    root = merkle.root(entries)
    path = merkle.inclusion_path(entries, index)
    assert merkle.verify_inclusion(entries[index], index, n, path, root)
    assert len(path) <= max(1, (n - 1).bit_length())
    other = data.draw(st.integers(0, n - 1))
    if entries[other] != entries[index]:
        assert not merkle.verify_inclusion(entries[other], index, n, path, root)
    if other != index and len(set(entries)) == n:
        # The path binds the position: the same path does not prove another index.
        assert not merkle.verify_inclusion(entries[index], other, n, path, root)


@settings(max_examples=150, deadline=None)
@given(entries=entries_st, data=st.data())
def test_every_consistency_proof_verifies_and_detects_rewrites(entries, data) -> None:
    n = len(entries)
    m = data.draw(st.integers(0, n))
    old_root, new_root = merkle.root(entries[:m]), merkle.root(entries)
    path = merkle.consistency_path(entries, m)
    assert merkle.verify_consistency(m, n, old_root, new_root, path)
    if 0 < m < n:
        # Rewriting history inside the old tree must break consistency.
        k = data.draw(st.integers(0, m - 1))
        forged = list(entries)
        forged[k] = forged[k] + b"\xff"
        assert not merkle.verify_consistency(
            m, n, old_root, merkle.root(forged), merkle.consistency_path(forged, m)
        )


@settings(max_examples=100, deadline=None)
@given(entries=entries_st)
def test_frontier_matches_full_recomputation(entries) -> None:
    f = merkle.Frontier()
    for k, e in enumerate(entries, start=1):
        f.append(merkle.leaf_hash(e))
        assert f.root() == merkle.root(entries[:k])


@settings(max_examples=50, deadline=None)
@given(entries=entries_st)
def test_iterative_root_equals_rfc_recursive_definition(entries) -> None:
    def mth(d: list[bytes]) -> bytes:
        if len(d) == 1:
            return merkle.leaf_hash(d[0])
        k = 1 << ((len(d) - 1).bit_length() - 1)
        return merkle.node_hash(mth(d[:k]), mth(d[k:]))

    assert merkle.root(entries) == mth(entries)
