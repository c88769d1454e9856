"""Padmé padding (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
Communication with PURBs", PETS 2019).

Ciphertext length otherwise equals plaintext length, and a seized disk can be searched
for a known video by its exact size. Padmé rounds a length up so that at most
O(log log L) bits of it leak, at a cost of at most 12 % extra space.
"""

from __future__ import annotations


def padme(length: int) -> int:
    if length < 0:
        raise ValueError("length must be non-negative")
    if length < 2:
        return length
    e = length.bit_length() - 1  # floor(log2 L)
    s = e.bit_length()  # floor(log2 E) + 1
    last_bits = e - s
    mask = (1 << last_bits) - 1
    return (length + mask) & ~mask
