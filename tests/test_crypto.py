"""athar.crypto: streaming encryption, sealing, padding, passphrase stretching."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from athar.crypto import aead
from athar.crypto.identity import DeviceIdentity, fingerprint, verify_signature
from athar.crypto.kdf import Argon2Params, normalise_passphrase, stretch, subkey
from athar.crypto.padding import padme
from athar.crypto.stream import CHUNK_SIZE, ciphertext_length, decrypt_stream, encrypt_stream
from athar.errors import InputError, IntegrityError

SMALL_CHUNK = 64


def _encrypt(data: bytes, key: bytes, chunk: int = SMALL_CHUNK) -> bytes:
    out = io.BytesIO()
    digest = encrypt_stream(io.BytesIO(data), out, key, len(data), chunk_size=chunk)
    assert digest == hashlib.sha256(data).digest()
    return out.getvalue()


def _decrypt(blob: bytes, key: bytes) -> bytes:
    return b"".join(decrypt_stream(io.BytesIO(blob), key))


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=700))
def test_stream_round_trip_and_length_is_padded(data: bytes) -> None:
    key = aead.random_key()
    blob = _encrypt(data, key)
    assert _decrypt(blob, key) == data
    assert len(blob) == ciphertext_length(len(data), SMALL_CHUNK)


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=400), where=st.integers(min_value=0), bit=st.integers(0, 7)
)
def test_any_flipped_bit_is_detected(data: bytes, where: int, bit: int) -> None:
    key = aead.random_key()
    blob = bytearray(_encrypt(data, key))
    blob[where % len(blob)] ^= 1 << bit
    with pytest.raises(IntegrityError):
        _decrypt(bytes(blob), key)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=400), cut=st.integers(min_value=1))
def test_truncation_and_trailing_data_are_detected(data: bytes, cut: int) -> None:
    key = aead.random_key()
    blob = _encrypt(data, key)
    with pytest.raises(IntegrityError):
        _decrypt(blob[: len(blob) - 1 - cut % len(blob)], key)
    with pytest.raises(IntegrityError):
        _decrypt(blob + b"\x00", key)


def test_dropping_or_reordering_whole_chunks_is_detected() -> None:
    key = aead.random_key()
    data = os.urandom(SMALL_CHUNK * 5)
    blob = _encrypt(data, key)
    head = 8 + 4 + 24
    size = SMALL_CHUNK + 17
    chunks = [blob[head + i * size : head + (i + 1) * size] for i in range(5)]
    rest = blob[head + 5 * size :]
    dropped = blob[:head] + b"".join(chunks[:2] + chunks[3:]) + rest
    swapped = blob[:head] + b"".join([chunks[1], chunks[0], *chunks[2:]]) + rest
    for bad in (dropped, swapped):
        with pytest.raises(IntegrityError):
            _decrypt(bad, key)


def test_wrong_key_is_detected() -> None:
    blob = _encrypt(b"evidence", aead.random_key())
    with pytest.raises(IntegrityError):
        _decrypt(blob, aead.random_key())


def test_file_that_changes_while_read_is_refused() -> None:
    key = aead.random_key()
    with pytest.raises(InputError):
        encrypt_stream(io.BytesIO(b"short"), io.BytesIO(), key, 10)
    with pytest.raises(InputError):
        encrypt_stream(io.BytesIO(b"longer than said"), io.BytesIO(), key, 4)


def test_stream_memory_is_constant_for_large_input() -> None:
    """64 MiB through the stream with a zero-copy source: peak Python memory stays a few
    chunks, not the file size (the 10 GB video case)."""

    class Zeros(io.RawIOBase):
        def __init__(self, n: int) -> None:
            self.left = n

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            n = min(size, self.left)
            self.left -= n
            return bytes(n)

    class Sink(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b) -> int:  # type: ignore[no-untyped-def]
            return len(b)

    total = 64 * CHUNK_SIZE
    tracemalloc.start()
    encrypt_stream(Zeros(total), Sink(), aead.random_key(), total)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * CHUNK_SIZE, peak


def test_padme_bounds_overhead_and_hides_exact_sizes() -> None:
    for n in [0, 1, 2, 9, 100, 1000, 10**6, 10**9 + 7]:
        p = padme(n)
        assert p >= n
        assert p - n <= max(1, n * 0.12)
    # Many distinct sizes collapse onto few padded sizes.
    sizes = {padme(n) for n in range(1_000_000, 1_100_000)}
    assert len(sizes) < 200


def test_sealing_binds_associated_data() -> None:
    key = aead.random_key()
    sealed = aead.seal(key, "محمد".encode(), b"row 1")
    assert aead.open_sealed(key, sealed, b"row 1") == "محمد".encode()
    with pytest.raises(IntegrityError):
        aead.open_sealed(key, sealed, b"row 2")
    with pytest.raises(IntegrityError):
        aead.open_sealed(key, sealed[:10], b"row 1")


def test_argon2_parameters_meet_rfc9106_and_weaker_ones_are_refused() -> None:
    params = Argon2Params.fresh()
    assert params.time_cost >= 3 and params.memory_kib >= 65536 and params.parallelism == 4
    weak = params.to_json() | {"m": 1024}
    with pytest.raises(InputError):
        Argon2Params.from_json(weak)
    assert Argon2Params.from_json(params.to_json()) == params


def test_passphrase_normalisation_makes_arabic_input_forms_equal() -> None:
    composed = "\u0622\u0645\u0646\u0629"  # آمنة with alef-madda as one code point
    decomposed = "\u0627\u0653\u0645\u0646\u0629"  # alef + combining madda above
    assert composed != decomposed
    assert normalise_passphrase(composed) == normalise_passphrase(decomposed)
    params = Argon2Params.fresh()
    assert stretch(composed, params) == stretch(decomposed, params)
    assert stretch("other", params) != stretch(composed, params)


def test_subkeys_are_independent() -> None:
    master = aead.random_key()
    assert subkey(master, "a") != subkey(master, "b")
    assert subkey(master, "a") == subkey(master, "a")


def test_identity_signs_and_round_trips() -> None:
    ident = DeviceIdentity.generate()
    sig = ident.sign(b"message")
    assert verify_signature(ident.public_key, b"message", sig)
    assert not verify_signature(ident.public_key, b"messagf", sig)
    assert not verify_signature(ident.public_key, b"message", sig[:10])
    again = DeviceIdentity.from_bytes(ident.to_bytes())
    assert again.public_key == ident.public_key
    assert len(fingerprint(ident.public_key)) == 24


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=2000), where=st.integers(min_value=0), bit=st.integers(0, 7))
def test_small_item_form_round_trips_pads_and_detects_tampering(data, where, bit) -> None:
    from athar.crypto.stream import open_small, padded_length, seal_small

    key = aead.random_key()
    sealed = seal_small(data, key)
    assert open_small(sealed, key) == data
    assert len(sealed) == aead.OVERHEAD + padded_length(len(data))  # size padded, not exact
    bad = bytearray(sealed)
    bad[where % len(bad)] ^= 1 << bit
    with pytest.raises(IntegrityError):
        open_small(bytes(bad), key)
    with pytest.raises(IntegrityError):
        open_small(sealed, aead.random_key())
    with pytest.raises(IntegrityError):
        open_small(sealed[:-1], key)
