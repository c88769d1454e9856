"""The pipelined blob paths a bundle uses (issue 5, speed): staging a member read
straight from the pipe, and decrypting a blob into reused buffers, must be exactly
the vault's stream format and make every check of athar.crypto.stream."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from athar.crypto import aead
from athar.crypto.stream import CHUNK_SIZE, decrypt_stream, encrypt_stream
from athar.errors import IntegrityError
from athar.vault.blobs import INLINE_MAX, BackgroundSync, BlobStore, LengthMismatch

ARABIC = "شهادة عن القصف على الحي، الساعة الثالثة فجراً. ".encode()


class Piped(io.RawIOBase):
    """A pipe-like source: readinto returns at most *step* bytes at a time."""

    def __init__(self, data: bytes, step: int = 65_536) -> None:
        self._data = memoryview(data)
        self._at = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._step, len(self._data) - self._at)
        buffer[:n] = self._data[self._at : self._at + n]
        self._at += n
        return n


def content(size: int) -> bytes:
    whole = ARABIC * (size // len(ARABIC) + 1)
    return whole[:size]


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    s = BlobStore(tmp_path, os.urandom(32), os.urandom(32))
    s.ensure_dirs()
    return s


@pytest.mark.parametrize(
    "size", [INLINE_MAX + 1, CHUNK_SIZE - 8, CHUNK_SIZE - 7, 2 * CHUNK_SIZE + 5, 20 << 20]
)
def test_pipelined_stage_is_the_stream_format_and_hashes_what_it_encrypts(
    store: BlobStore, size: int
) -> None:
    data = content(size)
    syncer = BackgroundSync()
    staged = store.stage_stream(Piped(data), size, syncer=syncer)
    syncer.wait()
    syncer.close()
    assert staged.temp is not None and staged.sha256 == hashlib.sha256(data).digest()
    with open(staged.temp, "rb") as fh:
        assert b"".join(decrypt_stream(fh, staged.data_key)) == data
    sink = io.BytesIO()
    encrypt_stream(io.BytesIO(data), sink, staged.data_key, size)
    assert staged.temp.stat().st_size == len(sink.getvalue())  # same layout, same length


@pytest.mark.parametrize("change", [-1, 1])
def test_pipelined_stage_refuses_a_member_of_another_length(store: BlobStore, change: int) -> None:
    size = 3 * CHUNK_SIZE
    syncer = BackgroundSync()
    with pytest.raises(LengthMismatch):
        store.stage_stream(Piped(content(size + change)), size, syncer=syncer)
    syncer.close()
    assert list(store.tmp_dir.iterdir()) == []  # nothing left behind


def _stored(store: BlobStore, data: bytes) -> tuple[bytes, bytes]:
    key = aead.random_key()
    ref = store.ref(hashlib.sha256(data).digest())
    path = store.path(ref)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        encrypt_stream(io.BytesIO(data), fh, key, len(data))
    return ref, key


def _copied(store: BlobStore, ref: bytes, key: bytes) -> bytes:
    out = bytearray()
    store.copy_plaintext(ref, key, "item س", None, out.extend)
    return bytes(out)


@pytest.mark.parametrize("size", [0, 5, CHUNK_SIZE - 8, CHUNK_SIZE, 3 * CHUNK_SIZE + 11])
def test_copy_plaintext_equals_decrypt_stream(store: BlobStore, size: int) -> None:
    data = content(size)
    ref, key = _stored(store, data)
    assert _copied(store, ref, key) == data


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("flip", "failed authentication"),
        ("cut", "final chunk missing|failed authentication"),
        ("trailing", "data after its final chunk|failed authentication"),
        ("header", "truncated \\(no header\\)"),
        ("magic", "not an Athar encrypted stream"),
    ],
)
def test_copy_plaintext_refuses_damage(store: BlobStore, damage: str, message: str) -> None:
    data = content(2 * CHUNK_SIZE + 100)
    ref, key = _stored(store, data)
    path = store.path(ref)
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 1
    elif damage == "cut":
        del blob[CHUNK_SIZE + 36 + 17 :]
    elif damage == "trailing":
        blob += b"\0"
    elif damage == "header":
        del blob[20:]
    else:
        blob[0] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(IntegrityError, match=message):
        _copied(store, ref, key)
    with pytest.raises(IntegrityError, match=message), open(path, "rb") as fh:
        b"".join(decrypt_stream(fh, key))  # the reference makes the same refusal


def test_whole_bundle_path_does_not_load_the_erasure_coder(tmp_path: Path) -> None:
    """zfec is loaded only to cut a bundle into parts or rebuild one from them: the
    export and import of a whole bundle start without it (each is its own process, so
    every module loaded before the transfer is part of its fixed cost)."""
    code = "import sys, athar.sync.service, athar.sync.bundle; print('zfec' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    # ...and cutting parts still loads it and works (a real split, in a fresh process).
    (tmp_path / "b").write_bytes(ARABIC * 500)
    code = (
        "import sys, pathlib; from athar.sync import parts\n"
        "d = pathlib.Path(sys.argv[1])\n"
        "print(len(parts.split(d / 'b', d, 8192, 0.5)), 'zfec' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["9", "True"]  # 42,500 B: 6 data parts, 3 of parity
