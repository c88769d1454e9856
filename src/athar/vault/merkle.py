"""Merkle tree maths of RFC 9162 §2.1 (identical to RFC 6962 §2.1), for SHA-256.

leaf hash = SHA-256(0x00 ‖ entry), node hash = SHA-256(0x01 ‖ left ‖ right); the tree
over n entries splits at the largest power of two smaller than n.

The public functions take raw entries, as the RFC states them. The ledger keeps leaf
hashes, not entries, in memory, so each has a ``*_from_hashes`` twin taking leaf hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """Merkle tree hash of leaves given by their leaf hashes, level by level (no recursion).

    Pairing neighbours and lifting an odd last node unchanged builds exactly the RFC's
    tree, because its left subtrees are always complete.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def root(entries: Sequence[bytes]) -> bytes:
    """The Merkle tree hash MTH(D[n]) of raw entries."""
    return root_from_hashes([leaf_hash(e) for e in entries])


def inclusion_path_from_hashes(hashes: Sequence[bytes], index: int) -> list[bytes]:
    if not 0 <= index < len(hashes):
        raise ValueError(f"index {index} outside a tree of size {len(hashes)}")
    path: list[bytes] = []
    lo, hi, m = 0, len(hashes), index
    # Walk down from the root, collecting the sibling subtree hashes, then reverse:
    # the RFC orders the path from the leaf upwards.
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            path.append(root_from_hashes(hashes[lo + k : hi]))
            hi = lo + k
        else:
            path.append(root_from_hashes(hashes[lo : lo + k]))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def inclusion_path(entries: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1 for entry *index*."""
    return inclusion_path_from_hashes([leaf_hash(e) for e in entries], index)


def consistency_path_from_hashes(hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    n = len(hashes)
    if not 0 <= old_size <= n:
        raise ValueError(f"old size {old_size} outside 0..{n}")
    if old_size in (0, n):
        return []
    # SUBPROOF(m, D[lo:hi], b) of RFC 9162 §2.1.4.1, unrolled into a loop.
    path: list[bytes] = []
    lo, hi, m, complete = 0, n, old_size, True
    while True:
        size = hi - lo
        if m == size:
            if not complete:
                path.append(root_from_hashes(hashes[lo:hi]))
            break
        k = _split(size)
        if m <= k:
            path.append(root_from_hashes(hashes[lo + k : hi]))
            hi = lo + k
        else:
            path.append(root_from_hashes(hashes[lo : lo + k]))
            lo, m, complete = lo + k, m - k, False
    path.reverse()
    return path


def consistency_path(entries: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 between the first *old_size* entries and all."""
    return consistency_path_from_hashes([leaf_hash(e) for e in entries], old_size)


def verify_inclusion_hash(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, given the leaf hash."""
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in path):
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_inclusion(
    entry: bytes, index: int, size: int, path: Sequence[bytes], root_hash: bytes
) -> bool:
    """Does *path* prove that *entry* is at *index* in the tree of *size* with *root_hash*?"""
    return verify_inclusion_hash(leaf_hash(entry), index, size, path, root_hash)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (new_size, new_root) an append-only extension of
    (old_size, old_root)?"""
    if not 0 <= old_size <= new_size or any(len(p) != HASH_SIZE for p in path):
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    if old_size == 0:
        return not path
    path = list(path)
    if old_size & (old_size - 1) == 0:  # exact power of two: old root is itself a node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class Frontier:
    """The right edge of a growing tree: O(log n) perfect-subtree roots.

    Lets the ledger compute a new root after each append batch without rehashing the log.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (subtree size, hash), sizes decreasing

    def append(self, leaf: bytes) -> None:
        size, h = 1, leaf
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, h = size + left_size, node_hash(left, h)
        self._stack.append((size, h))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1][1]
        for _, h in reversed(self._stack[:-1]):
            acc = node_hash(h, acc)
        return acc
